import { afterEach, describe, expect, it } from 'vitest';
import { PhaseTimeoutError } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Mesh } from '@peertrain/transport';
import { hopTimed } from './phase-timeouts.ts';

const meshes: Mesh[] = [];
afterEach(async () => {
  for (const m of meshes.splice(0)) await m.close();
});

async function pair(): Promise<[Mesh, Mesh]> {
  const net = createMemoryNetwork();
  const a = createMesh(memoryTransport(net, 'a'));
  const b = createMesh(memoryTransport(net, 'b'));
  meshes.push(a, b);
  await a.connect('b');
  return [a, b];
}

const key = { runId: 1, step: 0, microBatch: null, tag: 7 };
const hop = { phase: 'all-reduce hop', ms: 50 };

describe('hopTimed', () => {
  it('a receive that never comes fails with the phase named, after its time', async () => {
    const [a] = await pair();
    const t0 = performance.now();
    const err = await hopTimed(a, hop)
      .recvTensor('b', key)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseTimeoutError);
    expect(String(err)).toMatch(/all-reduce hop/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
  });

  it('a tensor in time arrives as sent; the caller’s own abort keeps its reason', async () => {
    const [a, b] = await pair();
    const timed = hopTimed(a, hop);
    const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    await b.sendTensor('a', { ...key, dtype: 'float32', shape: [3], data });
    const got = await timed.recvTensor('b', key);
    expect([...new Float32Array(got.data.slice().buffer)]).toEqual([1, 2, 3]);
    const stop = new AbortController();
    const reason = new Error('stopped by the run');
    const pending = timed.recvTensor('b', { ...key, step: 1 }, { signal: stop.signal });
    stop.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
