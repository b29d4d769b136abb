// The three pipeline schedules: (stages P, micro-batches M) -> one op list per stage (index = stage).
// Every forward of mb on stage s is wrapped as [recvAct from s-1] forward [sendAct to s+1], every
// backward as [recvGrad from s+1] backward [sendGrad to s-1]; the first and last stage skip the missing
// neighbour. Each stage ends with one optimizer op: gradients are accumulated over the M micro-batches
// and applied once (the flush), so P stages x M micro-batches equal one worker on the whole batch.

import { ConfigError } from '@peertrain/protocol';
import type { Op, ScheduleName, StageOps } from './ops.ts';
import { SCHEDULE_NAMES } from './ops.ts';

/** Throws ConfigError unless P and M are positive integers (and M = 1 for `naive`). */
export function checkShape(name: ScheduleName, stages: number, microBatches: number): void {
  const issues: string[] = [];
  if (!Number.isSafeInteger(stages) || stages < 1)
    issues.push(`stages must be an integer >= 1, got ${stages}`);
  if (!Number.isSafeInteger(microBatches) || microBatches < 1) {
    issues.push(`microBatches must be an integer >= 1, got ${microBatches}`);
  } else if (name === 'naive' && microBatches !== 1) {
    // Naive model parallelism has no micro-batches: the whole batch is one. Refused rather than
    // silently ignored, so a config asking for overlap with `naive` is caught.
    issues.push(`naive runs the whole batch as one micro-batch: microBatches must be 1, got ${microBatches}`);
  }
  if (issues.length > 0) throw new ConfigError(`invalid ${name} schedule`, issues);
}

/** Builds one stage's list; `fwd` and `bwd` append a micro-batch's forward or backward with its comms. */
function stageBuilder(stage: number, stages: number) {
  const ops: Op[] = [];
  const first = stage === 0;
  const last = stage === stages - 1;
  return {
    ops,
    fwd(mb: number): void {
      if (!first) ops.push({ kind: 'recvAct', mb, from: stage - 1 });
      ops.push({ kind: 'forward', mb });
      if (!last) ops.push({ kind: 'sendAct', mb, to: stage + 1 });
    },
    bwd(mb: number): void {
      if (!last) ops.push({ kind: 'recvGrad', mb, from: stage + 1 });
      ops.push({ kind: 'backward', mb });
      if (!first) ops.push({ kind: 'sendGrad', mb, to: stage - 1 });
    },
  };
}

/** GPipe: every forward in order, then every backward in reverse order, then the optimizer. */
function gpipeStage(stage: number, stages: number, microBatches: number): StageOps {
  const b = stageBuilder(stage, stages);
  for (let mb = 0; mb < microBatches; mb++) b.fwd(mb);
  for (let mb = microBatches - 1; mb >= 0; mb--) b.bwd(mb);
  b.ops.push({ kind: 'optimizer' });
  return b.ops;
}

/**
 * 1F1B (PipeDream-flush): stage s runs min(P - s - 1, M) warm-up forwards, then alternates one forward
 * and one backward until every forward is done, then the remaining backwards (cool-down). It holds at
 * most min(P - s, M) micro-batches of activations, against GPipe's M, with the same bubble.
 */
function oneFOneBStage(stage: number, stages: number, microBatches: number): StageOps {
  const b = stageBuilder(stage, stages);
  const warmup = Math.min(stages - stage - 1, microBatches);
  const steady = microBatches - warmup;
  for (let mb = 0; mb < warmup; mb++) b.fwd(mb);
  for (let i = 0; i < steady; i++) {
    b.fwd(warmup + i);
    b.bwd(i);
  }
  for (let mb = steady; mb < microBatches; mb++) b.bwd(mb);
  b.ops.push({ kind: 'optimizer' });
  return b.ops;
}

/**
 * The op lists of schedule `name` for `stages` pipeline stages and `microBatches` micro-batches per step.
 * Index = stage. Throws ConfigError for a non-integer or non-positive P or M, or naive with M != 1.
 */
export function schedule(name: ScheduleName, stages: number, microBatches: number): StageOps[] {
  checkShape(name, stages, microBatches);
  const build = (s: number): StageOps => {
    switch (name) {
      case 'naive': // one micro-batch through every stage and back: GPipe with M = 1
      case 'gpipe':
        return gpipeStage(s, stages, microBatches);
      case '1f1b':
        return oneFOneBStage(s, stages, microBatches);
      default: {
        const never: never = name;
        throw new ConfigError(`unknown schedule ${String(never)}`, [
          `expected one of ${SCHEDULE_NAMES.join(', ')}`,
        ]);
      }
    }
  };
  return Array.from({ length: stages }, (_, s) => build(s));
}

/**
 * Theoretical bubble (idle) fraction of GPipe and 1F1B with equal stage costs and free communication:
 * (P - 1) / (M + P - 1). Each stage is busy M (f + b) out of a makespan of (M + P - 1)(f + b): the
 * pipeline takes P - 1 slots to fill on the forward pass and P - 1 to drain on the backward pass.
 */
export function bubbleTheory(stages: number, microBatches: number): number {
  checkShape('gpipe', stages, microBatches);
  return (stages - 1) / (microBatches + stages - 1);
}
