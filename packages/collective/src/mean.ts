import type { Compressor } from '@peertrain/compress';
import type { Mesh } from '@peertrain/transport';
import { compressedAllReduce } from './compressed.ts';
import { allReduceAlgorithm, bytesPerElement, directAllReduce } from './direct.ts';
import type { AllReduceAlgorithm } from './direct.ts';
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
   * 'auto' (default): for fp32, allReduceAlgorithm(N, 4L) picks the ring or the direct exchange;
   * compressed tensors take the ring. 'direct' also carries fp16 and int8 (top-k and PowerSGD keep
   * their own exchanges whatever this says).
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
 * The group's mean of `data` [L], in place, on every peer: the sum by the ring all-reduce or, for a
 * small tensor, the direct exchange (direct.ts; compressed when `opts.compressor` says so), then each element times 1/N (N = group.length, the reciprocal
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
  const { compressor, algorithm = 'auto', choiceElems, ...ring } = opts;
  // 'auto' chooses only for fp32: a compressed exchange stays on the ring, whose bytes are the
  // compression's (the direct exchange trades bytes for hops; say 'direct' to have it anyway).
  const plain = compressor === undefined || compressor.kind === 'none';
  const direct =
    bytesPerElement(compressor) !== null &&
    (algorithm === 'auto'
      ? plain && allReduceAlgorithm(group.length, 4 * (choiceElems ?? data.length)) === 'direct'
      : algorithm === 'direct');
  const codec = compressor?.kind === 'fp16' || compressor?.kind === 'int8' ? compressor : undefined;
  const stats = direct
    ? await directAllReduce(mesh, group, data, { ...ring, ...(codec ? { codec } : {}) })
    : compressor === undefined || compressor.kind === 'none'
      ? await ringAllReduce(mesh, group, data, ring)
      : await compressedAllReduce(mesh, group, data, { ...ring, compressor });
  const inv = 1 / group.length;
  for (let i = 0; i < data.length; i++) data[i]! *= inv;
  return stats;
}
