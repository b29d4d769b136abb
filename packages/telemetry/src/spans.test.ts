import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { SPAN_KINDS } from '@peertrain/protocol';
import { SpanRecorder, laneOf } from './spans.ts';

/** A clock the test moves by hand. */
function fakeClock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('SpanRecorder', () => {
  it('times async work on the injected clock, with lane from the kind and bytes set inside', async () => {
    const clock = fakeClock();
    const rec = new SpanRecorder({ peerId: 'w1', now: clock.now });
    const result = await rec.span('recv', { step: 3, microBatch: 2 }, async (meta) => {
      await Promise.resolve();
      clock.advance(12.5);
      meta.bytes = 4096;
      return 'payload';
    });
    expect(result).toBe('payload');
    expect(rec.drain()).toEqual([
      {
        peerId: 'w1',
        kind: 'recv',
        startMs: 1000,
        durMs: 12.5,
        step: 3,
        microBatch: 2,
        bytes: 4096,
        lane: 'comm',
      },
    ]);
    expect(rec.size).toBe(0);
  });

  it('records a span whose function throws, and rethrows', async () => {
    const clock = fakeClock();
    const rec = new SpanRecorder({ peerId: 'w1', now: clock.now });
    const failing = rec.span('forward', { step: 0 }, () => {
      clock.advance(3);
      throw new Error('out of memory');
    });
    await expect(failing).rejects.toThrow('out of memory');
    expect(rec.snapshot()).toMatchObject([{ kind: 'forward', durMs: 3, lane: 'compute' }]);
  });

  it('names the peer on the other end of a send, and only when told', () => {
    const rec = new SpanRecorder({ peerId: 'w0', now: () => 0 });
    expect(rec.record('send', 1, 2, { step: 0, peer: 'w1' }).peer).toBe('w1');
    expect('peer' in rec.record('forward', 1, 2, { step: 0 })).toBe(false);
  });

  it('begin/end measures and lets the lane be overridden', () => {
    const clock = fakeClock(0);
    const rec = new SpanRecorder({ peerId: 'w0', now: clock.now });
    const end = rec.begin('compute', { step: 1, lane: 'comm' });
    clock.advance(7);
    const span = end({ bytes: 10 });
    expect(span).toEqual({
      peerId: 'w0',
      kind: 'compute',
      startMs: 0,
      durMs: 7,
      step: 1,
      bytes: 10,
      lane: 'comm',
    });
  });

  it('keeps the newest spans in a bounded ring buffer and counts the dropped ones', () => {
    const rec = new SpanRecorder({ peerId: 'w0', now: () => 0, capacity: 3 });
    for (let step = 0; step < 5; step++) rec.record('optimizer', step * 10, 1, { step });
    expect(rec.size).toBe(3);
    expect(rec.dropped).toBe(2);
    expect(rec.drain().map((s) => s.step)).toEqual([2, 3, 4]);
    rec.record('eval', 0, 1, { step: 9 });
    expect(rec.drain().map((s) => s.step)).toEqual([9]);
    expect(rec.drain()).toEqual([]);
  });

  it('refuses a bad capacity, and every kind has a lane', () => {
    expect(() => new SpanRecorder({ peerId: 'w0', now: () => 0, capacity: 0 })).toThrow(ConfigError);
    const comm = SPAN_KINDS.filter((k) => laneOf(k) === 'comm');
    expect(comm.join(' ')).toBe('send recv wait allreduce reduceScatter allGather recovery');
  });
});
