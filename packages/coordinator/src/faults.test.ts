import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolError, coordinatorPeerId, decodeFrame, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { joinFaultStep, malformedFrame } from './faults.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('malformedFrame', () => {
  it("is protocol's frame cut short: refused as bad-length", () => {
    const frame = malformedFrame(3);
    expect(() => decodeFrame(frame)).toThrowError(ProtocolError);
    try {
      decodeFrame(frame);
    } catch (e) {
      expect((e as ProtocolError).code).toBe('bad-length');
    }
  });

  it('is refused once by the receiving mesh, whose link stays open', async () => {
    const net = createMemoryNetwork();
    const from = createMesh(memoryTransport(net, coordinatorPeerId('f')));
    const to = createMesh(memoryTransport(net, workerPeerId('f', 'w')));
    cleanups.push(
      () => from.close(),
      () => to.close(),
    );
    await to.connect(coordinatorPeerId('f'));
    const errors: unknown[] = [];
    to.onError((_from, err) => errors.push(err));
    const got = new Promise((resolve) => to.onControl((_f, msg) => resolve(msg)));
    await from.sendRaw(workerPeerId('f', 'w'), malformedFrame(1));
    await from.sendControl(workerPeerId('f', 'w'), { type: 'ping', id: 1, t0: 0 });
    expect(await got).toEqual({ type: 'ping', id: 1, t0: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProtocolError);
  });
});

describe('join@K', () => {
  it('names the step boundary a joiner is waited for at', () => {
    expect(joinFaultStep(['malformed', 'join@20'])).toBe(20);
    expect(joinFaultStep(['join@x', 'vanish'])).toBeNull();
    expect(joinFaultStep(undefined)).toBeNull();
  });
});
