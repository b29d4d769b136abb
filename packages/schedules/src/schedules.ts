// The pipeline schedules: (stages P, micro-batches M[, virtual stages V]) -> one op list per stage
// (index = stage = device). Every forward of mb on virtual stage v is wrapped as [recvAct from v-1]
// forward [sendAct to v+1], every backward (or the input-gradient part of a split one) as
// [recvGrad from v+1] backward [sendGrad to v-1]; the first and last virtual stage skip the missing
// neighbour. Each stage ends with one optimizer op: gradients are accumulated over the M micro-batches
// and applied once (the flush), so P stages x M micro-batches equal one worker on the whole batch.

import { ConfigError } from '@peertrain/protocol';
import type { AnyOp, AnyScheduleName, AnyStageOps, ScheduleName, StageOps } from './ops.ts';
import { ALL_SCHEDULE_NAMES } from './ops.ts';
import { unitOps } from './build.ts';
import { interleavedStage } from './interleaved.ts';
import { zbH1Stage } from './zero-bubble.ts';

export interface ScheduleOptions {
  /** Model chunks per device (V), `interleaved` only; default 1. */
  readonly virtualStages?: number;
}

const positiveInt = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;

/**
 * Throws ConfigError unless P, M and V are positive integers and fit the schedule: M = 1 for `naive`;
 * V = 1 except for `interleaved`, which needs P >= 2 and M >= P (its micro-batches run in groups of P).
 */
export function checkShape(
  name: AnyScheduleName,
  stages: number,
  microBatches: number,
  virtualStages = 1,
): void {
  const issues: string[] = [];
  if (!positiveInt(stages)) issues.push(`stages must be an integer >= 1, got ${stages}`);
  if (!positiveInt(microBatches)) {
    issues.push(`microBatches must be an integer >= 1, got ${microBatches}`);
  } else if (name === 'naive' && microBatches !== 1) {
    // Naive model parallelism has no micro-batches: the whole batch is one. Refused rather than
    // silently ignored, so a config asking for overlap with `naive` is caught.
    issues.push(`naive runs the whole batch as one micro-batch: microBatches must be 1, got ${microBatches}`);
  }
  if (!positiveInt(virtualStages)) {
    issues.push(`virtualStages must be an integer >= 1, got ${virtualStages}`);
  } else if (name !== 'interleaved' && virtualStages !== 1) {
    issues.push(
      `only interleaved holds several chunks per device: virtualStages must be 1, got ${virtualStages}`,
    );
  }
  if (name === 'interleaved' && positiveInt(stages) && positiveInt(microBatches)) {
    // One device would send to itself; interleaving needs a ring of at least two.
    if (stages < 2) issues.push(`interleaved needs stages >= 2, got ${stages}`);
    // Micro-batches go through the chunks in groups of P (Megatron-LM); fewer than P leaves the
    // warm-up unable to fill the pipeline. M need not be a multiple of P (see interleaved.ts).
    else if (microBatches < stages)
      issues.push(`interleaved needs microBatches >= stages, got M = ${microBatches} < P = ${stages}`);
  }
  if (issues.length > 0) throw new ConfigError(`invalid ${name} schedule`, issues);
}

/** Builds one stage's non-interleaved list. */
function stageBuilder(stage: number, stages: number) {
  const ops: AnyOp[] = [];
  return { ops, ...unitOps(ops, { stage, stages, chunk: 0, virtualStages: 1 }, false) };
}

/** GPipe: every forward in order, then every backward in reverse order, then the optimizer. */
function gpipeStage(stage: number, stages: number, microBatches: number): AnyStageOps {
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
function oneFOneBStage(stage: number, stages: number, microBatches: number): AnyStageOps {
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
 * The op lists of schedule `name` for `stages` pipeline stages (devices) and `microBatches` micro-batches
 * per step; `virtualStages` chunks per device for `interleaved`. Index = stage. Throws ConfigError for a
 * shape `checkShape` refuses. The executor's schedules give executor ops (StageOps); `interleaved` and
 * `zb-h1` give AnyStageOps (chunks, split backward), which the executor cannot run yet.
 */
export function schedule(name: ScheduleName, stages: number, microBatches: number): StageOps[];
export function schedule(
  name: AnyScheduleName,
  stages: number,
  microBatches: number,
  options?: ScheduleOptions,
): AnyStageOps[];
export function schedule(
  name: AnyScheduleName,
  stages: number,
  microBatches: number,
  { virtualStages = 1 }: ScheduleOptions = {},
): AnyStageOps[] {
  checkShape(name, stages, microBatches, virtualStages);
  const build = (s: number): AnyStageOps => {
    switch (name) {
      case 'naive': // one micro-batch through every stage and back: GPipe with M = 1
      case 'gpipe':
        return gpipeStage(s, stages, microBatches);
      case '1f1b':
        return oneFOneBStage(s, stages, microBatches);
      case 'interleaved':
        return interleavedStage(s, stages, microBatches, virtualStages);
      case 'zb-h1':
        return zbH1Stage(s, stages, microBatches);
      default: {
        const never: never = name;
        throw new ConfigError(`unknown schedule ${String(never)}`, [
          `expected one of ${ALL_SCHEDULE_NAMES.join(', ')}`,
        ]);
      }
    }
  };
  return Array.from({ length: stages }, (_, s) => build(s));
}

/**
 * Theoretical bubble (idle) fraction of schedule `name` with equal stages and free communication, in the
 * simulator's unit costs (forward 1, backward 2 = input part 1 + weight part 1; an interleaved chunk's
 * ops cost the same, i.e. its model is V times deeper). The pipeline takes P - 1 slots to fill and to
 * drain; what a schedule hides of them:
 * - naive, gpipe, 1f1b: (P - 1) / (M + P - 1): busy M (f + b) of a makespan (M + P - 1)(f + b);
 * - interleaved: (P - 1) / (V M + P - 1): each device runs V M chunk passes, the fill and drain cost
 *   P - 1 chunk passes (Megatron-LM: bubble / ideal = (P - 1) / (V M)); the schedule meets it when P
 *   divides M and idles more otherwise (see interleaved.ts);
 * - zb-h1 (b = input part, w = weight part, f = b = w = 1): for M >= P, (P - 1) / (3 M + P - 1): the
 *   fill and drain cost (P - 1)(f + b - w) = P - 1 of a makespan 3 M + P - 1 (put-off weight parts fill
 *   the rest), a third of 1F1B's bubble time. For M < P the last stage's last input gradient, done at
 *   2 M + P - 1 (it alternates F and I from P - 1), climbs P - 1 stages and stage 0 ends with one W:
 *   makespan max(3 M + P - 1, 2 M + 2 P - 1), idle 1 - 3 M / makespan.
 */
export function bubbleTheory(
  name: AnyScheduleName,
  stages: number,
  microBatches: number,
  virtualStages = 1,
): number {
  checkShape(name, stages, microBatches, virtualStages);
  const fill = stages - 1;
  switch (name) {
    case 'naive':
    case 'gpipe':
    case '1f1b':
      return fill / (microBatches + fill);
    case 'interleaved':
      return fill / (virtualStages * microBatches + fill);
    case 'zb-h1': {
      const work = 3 * microBatches;
      return 1 - work / Math.max(work + fill, 2 * microBatches + 2 * stages - 1);
    }
    default: {
      const never: never = name;
      throw new ConfigError(`unknown schedule ${String(never)}`, [
        `expected one of ${ALL_SCHEDULE_NAMES.join(', ')}`,
      ]);
    }
  }
}
