import type { Compressor } from '@peertrain/compress';
import type { Mesh } from '@peertrain/transport';
import { compressedAllReduce } from './compressed.ts';
import { allReduceAlgorithm, bytesPerElement, directAllReduce } from './direct.ts';
import type { AllReduceAlgorithm } from './direct.ts';
import { pairwiseAllReduce } from './pairwise.ts';
import { ringAllReduce } from './ring.ts';
import type { AllReduceOptions, AllReduceStats } from './ring.ts';

export interface MeanOptions extends AllReduceOptions {
  /**
   * This worker's compression state for this tensor (createCompressor, kept across steps): the sum
   * goes through compressedAllReduce instead of the plain ring. Absent or kind 'none': the plain
   * ring, bit for bit as without the option.
   */
  compressor?: Compressor;
  /**
   * 'auto' (default): for fp32, allReduceAlgorithm(N, 4L) picks the direct exchange, the pairwise
   * one or the ring; compressed tensors take the ring. 'direct' also carries fp16 and int8 (top-k
   * and PowerSGD keep their own exchanges whatever this says); 'pairwise' is for fp32 only.
   */
  algorithm?: AllReduceAlgorithm | 'auto';
  /**
   * Elements the auto choice is made for (default data.length). A caller that reduces one tensor
   * bucket by bucket (overlap.ts) passes the whole tensor's, so every bucket takes the path the
   * whole would and the bits stay those of one call.
   */
  choiceElems?: number;
}

/**
 * The path allReduceSum takes for `elems` values over `n` peers. 'auto' chooses only for fp32: a
 * compressed exchange stays on the ring, whose bytes are the compression's (the direct exchange
 * trades bytes for hops; say 'direct' to have it anyway).
 */
export function allReducePath(
  algorithm: AllReduceAlgorithm | 'auto',
  n: number,
  elems: number,
  compressor?: Compressor,
): AllReduceAlgorithm {
  if (algorithm !== 'auto') return algorithm;
  const plain = compressor === undefined || compressor.kind === 'none';
  return plain ? allReduceAlgorithm(n, 4 * elems) : 'ring';
}

/**
 * The group's sum of `data` [L], in place, on every peer: by the direct exchange (a small tensor:
 * direct.ts), the pairwise one (pairwise.ts) or the ring (compressed when `opts.compressor` says
 * so), as `opts.algorithm` and the tensor's size choose. Every peer ends bit-identical. Callers that
 * scale the sum themselves (elastic data parallel divides by the run's first size) come here, so
 * their arithmetic is allReduceMean's before the scale.
 */
export async function allReduceSum(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: MeanOptions,
): Promise<AllReduceStats> {
  const { compressor, algorithm = 'auto', choiceElems, ...ring } = opts;
  const plain = compressor === undefined || compressor.kind === 'none';
  const chosen = allReducePath(algorithm, group.length, choiceElems ?? data.length, compressor);
  const codec = compressor?.kind === 'fp16' || compressor?.kind === 'int8' ? compressor : undefined;
  if (chosen === 'direct' && bytesPerElement(compressor) !== null)
    return directAllReduce(mesh, group, data, { ...ring, ...(codec ? { codec } : {}) });
  if (!plain) return compressedAllReduce(mesh, group, data, { ...ring, compressor });
  return chosen === 'pairwise'
    ? pairwiseAllReduce(mesh, group, data, ring)
    : ringAllReduce(mesh, group, data, ring);
}

/**
 * The group's mean of `data` [L], in place, on every peer: the sum (allReduceSum), then each element
 * times 1/N (N = group.length, the reciprocal computed once). The one place a worker averages over
 * its group: data parallel's gradients, DiLoCo's pseudo-gradients and a hybrid's stage group all
 * come here, so the arithmetic (and the bits) cannot drift apart. Every peer ends bit-identical, as
 * with the sum (compressedAllReduce keeps that for every codec). Rejects as ringAllReduce /
 * compressedAllReduce do.
 */
export async function allReduceMean(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: MeanOptions,
): Promise<AllReduceStats> {
  const stats = await allReduceSum(mesh, group, data, opts);
  const inv = 1 / group.length;
  for (let i = 0; i < data.length; i++) data[i]! *= inv;
  return stats;
}
