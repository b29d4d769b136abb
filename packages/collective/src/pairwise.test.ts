import { ConfigError, PeerLostError, ProtocolError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { allReduceMean } from './mean.ts';
import { pairwiseAllReduce } from './pairwise.ts';
import { chunkBounds } from './ring.ts';
import { ids, inputs, sameBits, useTestHubs } from './testMesh.ts';

const newHub = useTestHubs();
describe('pairwiseAllReduce', () => {
  it.each([3, 4, 5])(
    '%i peers: every peer ends with the float32 sum in rank order, the same bits, the ring’s bytes',
    async (n) => {
      const group = ids(n);
      const length = 1003; // chunks of unequal size
      const xs = inputs(n, length, 11 + n);
      const h = newHub({ delayMs: () => Math.random() * 3 }); // messages arrive in any order
      const meshes = group.map((id) => h.mesh(id));
      const data = xs.map((x) => x.slice());
      const phases: string[][] = group.map(() => []);
      const stats = await Promise.all(
        meshes.map((m, r) =>
          pairwiseAllReduce(m, group, data[r]!, {
            runId: 1,
            step: 2,
            onPhase: (phase) => phases[r]!.push(phase),
          }),
        ),
      );
      expect(sameBits(data)).toBe(true);
      const f = Math.fround;
      for (let i = 0; i < length; i++) {
        let s = 0;
        for (const x of xs) s = f(s + x[i]!);
        expect(data[n - 1]![i]).toBe(s);
      }
      // Rank r sends every chunk but its own, then its own to the N-1 others: L + (N-2)|chunk r|.
      const b = chunkBounds(length, n);
      for (const [r, s] of stats.entries()) {
        const own = b[r + 1]! - b[r]!;
        expect(s.bytesSent).toBe(4 * (length + (n - 2) * own));
        expect(s.bytesReceived).toBe(4 * ((n - 1) * own + length - own));
      }
      for (const p of phases) expect(p).toEqual(['reduceScatter', 'allGather']);
      for (const m of meshes) expect(m.pendingReceivers()).toBe(0);
    },
  );

  it('fewer elements than peers: the empty chunks are neither sent nor awaited', async () => {
    const group = ids(5);
    const xs = inputs(5, 3, 2);
    const h = newHub();
    const meshes = group.map((id) => h.mesh(id));
    const data = xs.map((x) => x.slice());
    await Promise.all(meshes.map((m, r) => pairwiseAllReduce(m, group, data[r]!, { runId: 1, step: 0 })));
    expect(sameBits(data)).toBe(true);
    for (let i = 0; i < 3; i++)
      expect(data[0]![i]).toBeCloseTo(
        xs.reduce((s, x) => s + x[i]!, 0),
        6,
      );
  });

  it('allReduceMean picks it for the MNIST MLP’s gradient at 4 peers: the mean, the same bits', async () => {
    const group = ids(4);
    const length = 101_770;
    const xs = inputs(4, length, 9);
    const h = newHub();
    const data = xs.map((x) => x.slice());
    const phases: string[] = [];
    const meshes = group.map((id) => h.mesh(id));
    const stats = await Promise.all(
      meshes.map((m, r) =>
        allReduceMean(m, group, data[r]!, {
          runId: 1,
          step: 0,
          bucketElems: 65_536,
          onPhase: (p) => r === 0 && phases.push(p),
        }),
      ),
    );
    expect(sameBits(data)).toBe(true);
    expect(stats[0]!.buckets).toBe(1); // the ring would have taken 2 buckets of 65,536
    expect(phases).toEqual(['reduceScatter', 'allGather']);
    for (const i of [0, 5_000, length - 1]) {
      expect(data[1]![i]).toBeCloseTo((xs[0]![i]! + xs[1]![i]! + xs[2]![i]! + xs[3]![i]!) / 4, 6);
    }
  });

  it('a payload of the wrong size is refused by name, the data left as it was, nothing pending', async () => {
    const h = newHub();
    const [a, b] = [h.mesh('p0'), h.mesh('p1')];
    h.mesh('p2');
    h.linkAll(['p0', 'p1', 'p2']);
    const data = Float32Array.from({ length: 90 }, (_, i) => i);
    const done = pairwiseAllReduce(a, ['p0', 'p1', 'p2'], data, {
      runId: 1,
      step: 1,
      signal: AbortSignal.timeout(2_000),
    });
    const key = { runId: 1, step: 1, microBatch: null, tag: 0 };
    await b.sendTensor('p0', { ...key, dtype: 'float32', shape: [3], data: new Uint8Array(12) });
    await expect(done).rejects.toThrow(ProtocolError);
    await expect(done).rejects.toThrow(/from p1/);
    expect(data[7]).toBe(7);
    expect(a.pendingReceivers()).toBe(0);
  });

  it('rejects with PeerLostError on every survivor when a peer is lost mid-way', async () => {
    const h = newHub({ delayMs: () => 2 });
    const group = ids(4);
    const meshes = group.map((id) => h.mesh(id));
    h.linkAll(group);
    const data = inputs(4, 50_000, 8);
    // p3 never takes part: the others wait for its chunk until it is lost.
    const runs = meshes.slice(0, 3).map((m, r) =>
      pairwiseAllReduce(m, group, data[r]!, { runId: 0, step: 0 }).then(
        () => 'resolved',
        (err: unknown) => err,
      ),
    );
    await new Promise((r) => setTimeout(r, 10));
    h.kill('p3');
    for (const [r, res] of (await Promise.all(runs)).entries()) {
      expect(res).toBeInstanceOf(PeerLostError);
      expect((res as PeerLostError).peerId).toBe('p3');
      expect(meshes[r]!.pendingReceivers()).toBe(0);
    }
  });

  it('rejects an aborted signal, a group without this peer and a tag past u32', async () => {
    const m = newHub().mesh('p0');
    const opts = { runId: 1, step: 1 };
    await expect(
      pairwiseAllReduce(m, ['p0', 'p1', 'p2'], new Float32Array(4), { ...opts, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(pairwiseAllReduce(m, ['p1', 'p2', 'p3'], new Float32Array(4), opts)).rejects.toThrow(
      ConfigError,
    );
    await expect(
      pairwiseAllReduce(m, ['p0', 'p1', 'p2'], new Float32Array(4), { ...opts, tagBase: 2 ** 32 - 1 }),
    ).rejects.toThrow(ConfigError);
  });
});
