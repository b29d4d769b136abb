import type { Mesh } from '@peertrain/transport';
import { ringAllReduce } from './ring.ts';
import type { AllReduceOptions, AllReduceStats } from './ring.ts';

/**
 * The group's mean of `data` [L], in place, on every peer: the ring all-reduce's sum, then each
 * element times 1/N (N = group.length, the reciprocal computed once). The one place a worker
 * averages over a ring: data parallel's gradients and a hybrid's stage group both come here, so
 * the arithmetic (and the bits) cannot drift apart. Every peer ends bit-identical, as with the sum.
 * Rejects as ringAllReduce does.
 */
export async function allReduceMean(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: AllReduceOptions,
): Promise<AllReduceStats> {
  const stats = await ringAllReduce(mesh, group, data, opts);
  const inv = 1 / group.length;
  for (let i = 0; i < data.length; i++) data[i]! *= inv;
  return stats;
}
