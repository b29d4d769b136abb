import { describe, expect, it } from 'vitest';
import { PeerLostError, ProtocolError, toWireError } from './errors.ts';
import {
  MAX_PROBE_BYTES,
  linkCountsText,
  parseControl,
  parseToCoordinator,
  parseToWorker,
} from './messages.ts';

// The telemetry additions: pong's memory report, the bandwidth probe and its ack. Old fields keep
// their meaning: a pong without memory is still a pong.

const memory = { numBytes: 1_234_567, numTensors: 42, numBytesInGPU: 1_000_000, paramBytes: 407_080 };

describe('pong memory report', () => {
  it('accepts a pong without memory (old workers) and with one', () => {
    expect(parseToCoordinator({ type: 'pong', id: 1, t0: 5, tWorker: 9 })).toEqual({
      type: 'pong',
      id: 1,
      t0: 5,
      tWorker: 9,
    });
    const full = { ...memory, unreliable: false, savedActivations: 8, peakActivationBytes: 65_536 };
    expect(parseToCoordinator({ type: 'pong', id: 2, t0: 5, tWorker: 9, memory: full })).toMatchObject({
      memory: full,
    });
  });

  it.each([
    ['negative bytes', { ...memory, numBytes: -1 }],
    ['fractional tensors', { ...memory, numTensors: 1.5 }],
    ['a string count', { ...memory, numTensors: '42' }],
    ['missing numBytes', { numTensors: 1 }],
    ['negative GPU bytes', { ...memory, numBytesInGPU: -5 }],
  ])('refuses a memory report with %s', (_what, bad) => {
    expect(() => parseToCoordinator({ type: 'pong', id: 1, t0: 5, tWorker: 9, memory: bad })).toThrow(
      ProtocolError,
    );
    expect(() => parseToCoordinator({ type: 'pong', id: 1, t0: 5, tWorker: 9, memory: bad })).toThrow(
      /memory/,
    );
  });
});

describe('bandwidth probe', () => {
  it('parses a probe and its ack in their own directions and in the any-direction parser', () => {
    const probe = { type: 'probe', id: 3, bytes: 262_144, tag: 0x7ffe_0000 };
    expect(parseToWorker(probe)).toEqual(probe);
    expect(parseControl(probe)).toEqual(probe);
    const ack = { type: 'probeAck', id: 3, bytes: 262_144 };
    expect(parseToCoordinator(ack)).toEqual(ack);
    const failed = { type: 'probeAck', id: 3, bytes: 0, error: { name: 'AbortError', message: 'timeout' } };
    expect(parseToCoordinator(failed)).toEqual(failed);
  });

  it.each([
    ['no payload', { type: 'probe', id: 1, bytes: 0, tag: 1 }],
    ['a payload over the limit', { type: 'probe', id: 1, bytes: MAX_PROBE_BYTES + 1, tag: 1 }],
    ['a tag beyond u32', { type: 'probe', id: 1, bytes: 10, tag: 2 ** 32 }],
    ['a negative id', { type: 'probe', id: -1, bytes: 10, tag: 1 }],
    ['no tag', { type: 'probe', id: 1, bytes: 10 }],
  ])('refuses a probe with %s', (_what, bad) => {
    expect(() => parseToWorker(bad)).toThrow(ProtocolError);
  });

  it('refuses a malformed ack and a probe sent the wrong way', () => {
    expect(() => parseToCoordinator({ type: 'probeAck', id: 1, bytes: -3 })).toThrow(ProtocolError);
    expect(() => parseToCoordinator({ type: 'probeAck', id: 1, bytes: 3, error: 'x' })).toThrow(
      ProtocolError,
    );
    expect(() => parseToCoordinator({ type: 'probe', id: 1, bytes: 10, tag: 1 })).toThrow(ProtocolError);
    expect(() => parseToWorker({ type: 'probeAck', id: 1, bytes: 10 })).toThrow(ProtocolError);
  });
});

describe('error reports', () => {
  it('carry the lost peer of a PeerLostError across the wire, and nothing extra for other errors', () => {
    const lost = toWireError(new PeerLostError('pt-r-w-b', 'connection closed'));
    expect(lost).toEqual({
      name: 'PeerLostError',
      message: 'peer pt-r-w-b lost: connection closed',
      peerId: 'pt-r-w-b',
    });
    expect(parseToCoordinator({ type: 'error', runId: 1, error: lost })).toEqual({
      type: 'error',
      runId: 1,
      error: lost,
    });
    expect(toWireError(new RangeError('bad'))).toEqual({ name: 'RangeError', message: 'bad' });
    expect(() => parseToCoordinator({ type: 'error', error: { ...lost, peerId: 7 } })).toThrow(ProtocolError);
  });
});

describe('stopping at a target and asynchronous staleness', () => {
  const evalResult = { type: 'evalResult', runId: 1, step: 40, accuracy: 0.93, loss: 0.3, count: 1000 };
  const stepDone = {
    type: 'stepDone',
    runId: 1,
    step: 3,
    samples: 32,
    computeMs: 5,
    commMs: 1,
    bytesSent: 0,
  };

  it('accepts an evaluation marked final and a step with its staleness; both stay optional', () => {
    expect(parseToCoordinator({ ...evalResult, final: true })).toMatchObject({ final: true });
    expect('final' in parseToCoordinator(evalResult)).toBe(false);
    expect(parseToCoordinator({ ...stepDone, staleness: 2 })).toMatchObject({ staleness: 2 });
    expect('staleness' in parseToCoordinator(stepDone)).toBe(false);
  });

  it('refuses a final that is not a boolean and a negative or fractional staleness', () => {
    expect(() => parseToCoordinator({ ...evalResult, final: 'yes' })).toThrow(/final/);
    expect(() => parseToCoordinator({ ...stepDone, staleness: -1 })).toThrow(/staleness/);
    expect(() => parseToCoordinator({ ...stepDone, staleness: 1.5 })).toThrow(/staleness/);
  });
});

describe('asynchronous parameter server fields', () => {
  const done = { type: 'stepDone', runId: 1, step: 4, samples: 32, computeMs: 5, commMs: 1, bytesSent: 9 };
  it('carries an optional staleness on stepDone, refusing negative or fractional ones', () => {
    expect(parseToCoordinator(done)).toEqual(done);
    expect(parseToCoordinator({ ...done, staleness: 3 })).toMatchObject({ staleness: 3 });
    expect(() => parseToCoordinator({ ...done, staleness: -1 })).toThrow(ProtocolError);
    expect(() => parseToCoordinator({ ...done, staleness: 0.5 })).toThrow(ProtocolError);
  });

  it('parses the slow fault, with a factor of at least 1', () => {
    const slow = { type: 'slow', runId: 2, factor: 3 };
    expect(parseToWorker(slow)).toEqual(slow);
    expect(() => parseToWorker({ ...slow, factor: 0.5 })).toThrow(ProtocolError);
  });
});

describe('elastic epochs', () => {
  const epoch = { type: 'epoch', runId: 3, epoch: 2, peers: ['a', 'c'], fromStep: 5 };

  it('carries the new members and the step to redo; the ack names the epoch', () => {
    expect(parseToWorker(epoch)).toEqual(epoch);
    expect(parseToCoordinator({ type: 'epochAck', runId: 3, epoch: 2 })).toEqual({
      type: 'epochAck',
      runId: 3,
      epoch: 2,
    });
  });

  it.each([
    ['no members', { ...epoch, peers: [] }],
    ['a negative step', { ...epoch, fromStep: -1 }],
    ['a fractional epoch', { ...epoch, epoch: 1.5 }],
  ])('refuses an epoch with %s', (_what, bad) => {
    expect(() => parseToWorker(bad)).toThrow(ProtocolError);
  });
});

describe('heartbeats', () => {
  it('a heartbeat goes to the coordinator and `dropped` to a worker, each only its own way', () => {
    const beat = { type: 'heartbeat', tWorker: 12.5 };
    expect(parseToCoordinator(beat)).toEqual(beat);
    expect(() => parseToWorker(beat)).toThrow(ProtocolError);
    expect(() => parseToCoordinator({ type: 'heartbeat' })).toThrow(ProtocolError);
    const dropped = { type: 'dropped', reason: 'no heartbeat within the timeout' };
    expect(parseToWorker(dropped)).toEqual(dropped);
    expect(() => parseToCoordinator(dropped)).toThrow(ProtocolError);
  });
});

describe('linkCountsText', () => {
  it('names the kinds a worker linked by, in a fixed order, and says nothing of none', () => {
    expect(linkCountsText({ webrtc: 1, tab: 2 })).toBe('1 WebRTC + 2 tab');
    expect(linkCountsText({ tab: 0, memory: 3 })).toBe('3 in-memory');
    expect(linkCountsText({})).toBe('');
    expect(linkCountsText(undefined)).toBe('');
  });

  it('ready carries them; a negative or fractional count is refused', () => {
    const ready = { type: 'ready', runId: 1, loadMs: 5, links: { tab: 2 } };
    expect(parseToCoordinator(ready)).toEqual(ready);
    expect(parseToCoordinator({ type: 'ready', runId: 1, loadMs: 5 })).not.toHaveProperty('links');
    expect(() => parseToCoordinator({ ...ready, links: { tab: -1 } })).toThrow(ProtocolError);
    expect(() => parseToCoordinator({ ...ready, links: { webrtc: 1.5 } })).toThrow(ProtocolError);
  });
});
