import type { Compressor } from '@peertrain/compress';
import type { Mesh } from '@peertrain/transport';
import { compressedAllReduce } from './compressed.ts';
import { ringAllReduce } from './ring.ts';
import type { AllReduceOptions, AllReduceStats } from './ring.ts';

export interface MeanOptions extends AllReduceOptions {
  /**
   * This worker's compression state for this tensor (createCompressor, kept across steps): the sum
   * goes through compressedAllReduce instead of the plain ring. Absent or kind 'none': the plain
   * ring, bit for bit as without the option.
   */
  compressor?: Compressor;
}

/**
 * The group's mean of `data` [L], in place, on every peer: the ring all-reduce's sum (compressed
 * when `opts.compressor` says so), then each element times 1/N (N = group.length, the reciprocal
 * computed once). The one place a worker averages over a ring: data parallel's gradients, DiLoCo's
 * pseudo-gradients and a hybrid's stage group all come here, so the arithmetic (and the bits)
 * cannot drift apart. Every peer ends bit-identical, as with the sum (compressedAllReduce keeps
 * that for every codec). Rejects as ringAllReduce / compressedAllReduce do.
 */
export async function allReduceMean(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: MeanOptions,
): Promise<AllReduceStats> {
  const { compressor, ...ring } = opts;
  const stats =
    compressor === undefined || compressor.kind === 'none'
      ? await ringAllReduce(mesh, group, data, ring)
      : await compressedAllReduce(mesh, group, data, { ...ring, compressor });
  const inv = 1 / group.length;
  for (let i = 0; i < data.length; i++) data[i]! *= inv;
  return stats;
}
