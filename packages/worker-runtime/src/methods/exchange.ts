// What the all-reduce based methods (allreduce.ts, diloco.ts) share: the ring's links, the
// compression state of the tensor they exchange, and the mean over the ring with its spans.
import { allReduceMean } from '@peertrain/collective';
import type { AllReduceStats } from '@peertrain/collective';
import { createCompressor, parseCompression } from '@peertrain/compress';
import type { Compressor } from '@peertrain/compress';
import type { MethodContext, MethodLinks, Placement } from './types.ts';

/** Ring: we send to the next rank and receive from the previous one. */
export function ringLinks({ peers, rank }: Placement): MethodLinks {
  const n = peers.length;
  const next = peers[(rank + 1) % n]!;
  const prev = peers[(rank - 1 + n) % n]!;
  return { dial: [next], need: [next, prev] };
}

/**
 * This worker's compression state for the one tensor [length] a method exchanges every step or
 * round (config.compress), kept for the whole run (top-k's and PowerSGD's error feedback live in
 * it); null for 'none', so the plain ring runs exactly as without compression. Seeds: int8's
 * stochastic rounding differs per worker (from the run seed and the rank: equal noise on every
 * worker would not average out); PowerSGD's initial Q must be the same on every worker (from the
 * run seed and the run id). PowerSGD sees the model's parameter tensors (session.paramShapes):
 * 2-D kernels are compressed, biases travel uncompressed.
 */
export function exchangeCompressor(ctx: MethodContext, length: number): Compressor | null {
  const { config, rank, runId } = ctx.assign;
  const spec = parseCompression(config.compress);
  if (spec.kind === 'none') return null;
  return createCompressor(spec, {
    length,
    seed: (config.seed ^ Math.imul(rank + 1, 0x9e3779b1)) >>> 0,
    powersgdSeed: (config.seed ^ Math.imul(runId + 1, 0x85ebca6b)) >>> 0,
    shapes: ctx.session.paramShapes,
  });
}

/**
 * The workers' mean of `data` [L] in place (allReduceMean, compressed when `compressor` is given),
 * keyed by `step`: two exchanges at different steps never share a message. The ring's two halves
 * are recorded as spans (reduceScatter / allGather) of that step.
 */
export function meanOverRing(
  ctx: MethodContext,
  data: Float32Array,
  step: number,
  compressor: Compressor | null,
  signal: AbortSignal = ctx.signal,
): Promise<AllReduceStats> {
  const { mesh, assign, spans } = ctx;
  return allReduceMean(mesh, assign.peers, data, {
    runId: assign.runId,
    step,
    bucketElems: assign.config.bucketElems,
    algorithm: assign.config.allReduce,
    signal,
    now: () => spans.now(),
    onPhase: (kind, startMs, endMs) => spans.record(kind, startMs, endMs - startMs, { step }),
    ...(compressor !== null ? { compressor } : {}),
  });
}
