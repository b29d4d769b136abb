import { describe, expect, it } from 'vitest';
import { allReduceMean } from './mean.ts';
import { ringAllReduce } from './ring.ts';
import { mulberry32 } from '@peertrain/base';
import { useTestHubs } from './testMesh.ts';

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
    const means = await run(allReduceMean);
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
});
