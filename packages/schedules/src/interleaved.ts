// Interleaved 1F1B (Megatron-LM, Narayanan et al. 2021): device s holds V model chunks, s, s + P, ...,
// s + (V - 1) P of V P virtual stages, so a micro-batch crosses every device V times. Each pass over a
// chunk is 1/V of the device's work, so the pipeline fills and drains in P - 1 chunk passes instead of
// P - 1 whole-stage passes: the bubble shrinks V-fold, at the cost of V x the messages.

import type { AnyOp, AnyStageOps } from './ops.ts';
import { unitOps } from './build.ts';

/** One pass of a micro-batch over one of this device's chunks. */
interface Unit {
  readonly mb: number;
  readonly chunk: number;
}

/**
 * Order in which a device runs its V M forward passes (Megatron-LM's schedule table): micro-batches in
 * groups of P, each group through chunk 0, then chunk 1, ..., then chunk V - 1 (a last group short of P
 * micro-batches stays short). Backward passes follow the same order with the chunks reversed (the
 * gradient enters at the last chunk).
 */
export function interleavedOrder(stages: number, microBatches: number, virtualStages: number): Unit[] {
  const order: Unit[] = [];
  for (let start = 0, end = 0; start < microBatches; start = end) {
    end = Math.min(start + stages, microBatches);
    for (let chunk = 0; chunk < virtualStages; chunk++) {
      for (let mb = start; mb < end; mb++) order.push({ mb, chunk });
    }
  }
  return order;
}

/**
 * Stage s of interleaved 1F1B: a warm-up of 2 (P - s - 1) + (V - 1) P forward passes (Megatron-LM's
 * count), then one forward and one backward pass alternately, then the remaining backward passes, then
 * the optimizer. Needs P >= 2 and M >= P (checked by `checkShape`).
 *
 * With free messages P - s - 1 fewer warm-up passes give the same bubble, but Megatron's extra ones
 * hide message latency (simulated, P = 4, M = 16, V = 2, a message costing half a forward: idle 0.14
 * against 0.27), which is what this pipeline lacks; they cost P - s - 1 more chunk activations held.
 *
 * When P does not divide M, Megatron-LM's table with a short last group deadlocks (P = 5, M = 7) and one
 * with a long last group runs backwards before their forwards, so the order is built for M rounded up
 * to a multiple of P and the passes of the phantom micro-batches >= M are left out. What remains keeps
 * every device's order of a deadlock-free schedule on a subset of its micro-batches, so it is deadlock
 * free too; the phantoms leave holes, so it idles above (P - 1) / (V M + P - 1) (still below 1F1B's
 * bubble for P in 2..6, M in P..16, V in 2..4: the tests check it).
 */
export function interleavedStage(
  stage: number,
  stages: number,
  microBatches: number,
  virtualStages: number,
): AnyStageOps {
  const ops: AnyOp[] = [];
  const builders = Array.from({ length: virtualStages }, (_, chunk) =>
    unitOps(ops, { stage, stages, chunk, virtualStages }, true),
  );
  const padded = Math.ceil(microBatches / stages) * stages;
  const order = interleavedOrder(stages, padded, virtualStages);
  const total = order.length;
  const fwd = (k: number): void => {
    const u = order[k];
    if (u && u.mb < microBatches) builders[u.chunk]?.fwd(u.mb);
  };
  const bwd = (k: number): void => {
    const u = order[k];
    if (u && u.mb < microBatches) builders[virtualStages - 1 - u.chunk]?.bwd(u.mb);
  };
  const warmup = Math.min(total, 2 * (stages - stage - 1) + (virtualStages - 1) * stages);
  for (let k = 0; k < warmup; k++) fwd(k);
  for (let k = 0; k < total - warmup; k++) {
    fwd(warmup + k);
    bwd(k);
  }
  for (let k = Math.max(0, total - warmup); k < total; k++) bwd(k);
  ops.push({ kind: 'optimizer' });
  return ops;
}
