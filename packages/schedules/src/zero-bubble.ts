// Zero-bubble pipeline, schedule ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", 2023). The
// backward of a micro-batch is split into I (input gradient: what the previous stage waits for) and W
// (weight gradient: nobody waits for it). Only the I chain is on the critical path back up the
// pipeline, so the drain costs P - 1 I's instead of P - 1 whole backwards, and each stage fills the
// tail that 1F1B leaves idle with W's it has put off.

import type { AnyOp, AnyStageOps } from './ops.ts';
import { unitOps } from './build.ts';

/**
 * Stage s of ZB-H1: 1F1B's order (min(P - s - 1, M) warm-up forwards, then F/I alternating, then the
 * remaining I's) with each W run after its I only once s W's are pending; the s put-off W's run after
 * the last I, in the time stage s would wait there in 1F1B (the last I reaches stage s s slots before
 * stage 0). Stage s holds min(P, M) micro-batches at most (1F1B: min(P - s, M)): the same peak as
 * 1F1B's worst stage, as the paper states. Putting off fewer W's leaves part of the tail idle.
 */
export function zbH1Stage(stage: number, stages: number, microBatches: number): AnyStageOps {
  const ops: AnyOp[] = [];
  const b = unitOps(ops, { stage, stages, chunk: 0, virtualStages: 1 }, false);
  const warmup = Math.min(stages - stage - 1, microBatches);
  let inputDone = 0;
  let weightDone = 0;
  /** Runs W's, oldest first, until at most `keep` are pending. */
  const weights = (keep: number): void => {
    while (inputDone - weightDone > keep) b.weight(weightDone++);
  };
  for (let mb = 0; mb < warmup; mb++) b.fwd(mb);
  for (let mb = warmup; mb < microBatches; mb++) {
    b.fwd(mb);
    b.bwd(inputDone++, 'backwardInput');
    weights(stage);
  }
  while (inputDone < microBatches) {
    b.bwd(inputDone++, 'backwardInput');
    weights(stage);
  }
  weights(0);
  ops.push({ kind: 'optimizer' });
  return ops;
}
