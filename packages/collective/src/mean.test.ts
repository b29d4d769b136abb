import { createCompressor } from '@peertrain/compress';
import type { Compressor } from '@peertrain/compress';
import { describe, expect, it } from 'vitest';
import { compressedAllReduce } from './compressed.ts';
import { allReduceMean } from './mean.ts';
import { ringAllReduce } from './ring.ts';
import { mulberry32 } from '@peertrain/base';
import { useTestHubs } from './testMesh.ts';
import type { TestMesh } from './testMesh.ts';

const newHub = useTestHubs();

describe('allReduceMean', () => {
  it('is the ring sum times 1/N, bit for bit, on every peer', async () => {
    const n = 3;
    const group = ['a', 'b', 'c'];
    const rnd = mulberry32(7);
    const inputs = group.map(() => Float32Array.from({ length: 101 }, () => rnd() * 2 - 1));
    const run = async (op: typeof ringAllReduce): Promise<Float32Array[]> => {
      const h = newHub();
      const meshes = group.map((id) => h.mesh(id));
      const data = inputs.map((x) => x.slice());
      await Promise.all(
        meshes.map((mesh, r) => op(mesh, group, data[r]!, { runId: 1, step: 0, bucketElems: 16 })),
      );
      return data;
    };
    // 'ring': 101 floats would take the direct exchange (tested below)
    const means = await run((m, g, d, o) => allReduceMean(m, g, d, { ...o, algorithm: 'ring' }));
    const sums = await run(ringAllReduce);
    const inv = 1 / n;
    const expected = sums[0]!.map((s) => s * inv);
    for (const m of means) expect(Array.from(m)).toEqual(Array.from(expected));
    // Not the same as dividing by N for every element: the reciprocal is what the reference uses.
    expect(means[0]![0]).toBeCloseTo(sums[0]![0]! / n, 6);
  });

  it('leaves a group of one unchanged', async () => {
    const h = newHub();
    const data = Float32Array.from([1.5, -2.25, 3]);
    await allReduceMean(h.mesh('solo'), ['solo'], data, { runId: 1, step: 0, bucketElems: 4 });
    expect(Array.from(data)).toEqual([1.5, -2.25, 3]);
  });

  it('with a compressor is the compressed sum times 1/N, identical on every peer', async () => {
    const group = ['a', 'b', 'c'];
    const rnd = mulberry32(9);
    const inputs = group.map(() => Float32Array.from({ length: 257 }, () => rnd() * 2 - 1));
    const run = async (
      op: (m: TestMesh, d: Float32Array, c: Compressor) => Promise<unknown>,
    ): Promise<Float32Array[]> => {
      const h = newHub();
      const meshes = group.map((id) => h.mesh(id));
      const data = inputs.map((x) => x.slice());
      // Same seeds in both runs: int8's rounding noise is then the same.
      const comps = group.map((_, r) => createCompressor({ kind: 'int8' }, { length: 257, seed: 100 + r }));
      await Promise.all(meshes.map((m, r) => op(m, data[r]!, comps[r]!)));
      return data;
    };
    const opts = { runId: 1, step: 0, bucketElems: 64 };
    const means = await run((m, d, compressor) => allReduceMean(m, group, d, { ...opts, compressor }));
    const sums = await run((m, d, compressor) => compressedAllReduce(m, group, d, { ...opts, compressor }));
    const inv = 1 / group.length;
    for (const m of means) expect(Array.from(m)).toEqual(Array.from(sums[0]!, (s) => Math.fround(s * inv)));
    // A 'none' compressor is the plain ring, bit for bit.
    const plain = await run((m, d) => allReduceMean(m, group, d, opts));
    const none = await run((m, d) => allReduceMean(m, group, d, { ...opts, compressor: { kind: 'none' } }));
    expect(Array.from(none[1]!)).toEqual(Array.from(plain[1]!));
  });

  it('takes the direct exchange for a small fp32 tensor: the rank-order sum times 1/N on every peer', async () => {
    const group = ['a', 'b', 'c'];
    const rnd = mulberry32(11);
    const inputs = group.map(() => Float32Array.from({ length: 101 }, () => rnd() * 2 - 1));
    const h = newHub();
    const meshes = group.map((id) => h.mesh(id));
    const data = inputs.map((x) => x.slice());
    const stats = await Promise.all(
      meshes.map((mesh, r) => allReduceMean(mesh, group, data[r]!, { runId: 1, step: 0, bucketElems: 16 })),
    );
    expect(stats.map((s) => s.reduceScatterMs)).toEqual([0, 0, 0]); // one all-gather, no ring
    expect(stats.map((s) => s.bytesSent)).toEqual([808, 808, 808]); // the whole tensor to each other peer
    const inv = 1 / group.length;
    // Summed in float32, rank 0 first, as every peer does.
    const f = Math.fround;
    const expected = inputs[0]!.map((_, i) => f(f(f(0 + inputs[0]![i]!) + inputs[1]![i]!) + inputs[2]![i]!));
    for (const m of data) expect(Array.from(m)).toEqual(Array.from(expected, (s) => Math.fround(s * inv)));
  });
});
