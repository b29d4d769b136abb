import { ConfigError } from '@peertrain/protocol';
import type { RunConfigInput, ScheduleKind } from '@peertrain/protocol';
import { bubbleTheory } from '@peertrain/schedules';
import type { PipelineRow, PipelineSettings } from './report.ts';

// Part 4's plan and its summaries (pure; tested in pipeline-cases.test.ts): which pipeline runs,
// in what order, with which run configuration; then the figures the brief asks for, derived from
// the rows: recomputation's cost and the 1F1B-vs-GPipe comparison at one (P, M).

/**
 * wideMlp's 9 layers (dense 784-1024, relu, then three dense 1024-1024 with relu, dense 1024-10)
 * cut into P stages of one or two of the four wide dense layers each, so that the bubble reflects
 * the schedule rather than the planner. Stage 0's dense reads 784 inputs and needs no input
 * gradient, so it is the lightest; P = 3 cannot split four equal layers evenly.
 */
export const WIDE_MLP_PARTITIONS: Readonly<Record<number, string>> = {
  1: '0-8',
  2: '0-3,4-8',
  3: '0-2,3-5,6-8',
  4: '0-1,2-3,4-5,6-8',
};

/**
 * wideMlp cut into P * 2 chunks for interleaved V = 2 (chunk c on the peer of stage c mod P), so
 * that every peer holds as many of the four wide dense layers as under WIDE_MLP_PARTITIONS:
 * P = 2 one dense per chunk; P = 3 dense in chunks 0-3 (peer 0 holds two, as in 0-2,3-5,6-8);
 * P = 4 dense 0, 2, 4, 6 in chunks 0, 2, 3, 5 (peers 0, 2, 3, 1). Nine layers give at most 9
 * chunks, so at P = 4 half the chunks are a lone relu or the 1024-10 dense: the peers are
 * balanced but the chunks are not, which theory (equal chunks) does not account for.
 */
export const WIDE_MLP_INTERLEAVED_PARTITIONS: Readonly<Record<number, string>> = {
  2: '0-1,2-3,4-5,6-8',
  3: '0-1,2-3,4-4,5-6,7-7,8-8',
  4: '0-0,1-1,2-3,4-4,5-5,6-6,7-7,8-8',
};

/** A schedule of the grid with its chunks per peer (V > 1 only for interleaved). */
export interface ScheduleSpec {
  schedule: ScheduleKind;
  virtualStages: number;
}

export interface PipelineCase extends ScheduleSpec {
  stages: number;
  microBatches: number;
  recompute: boolean;
  /** false: every zero crosses between stages (activationSkipZeros off); absent: skipped, the default. */
  skipZeros?: boolean;
  steps: number;
}

/** The partition of a case: explicit per (P, V), null when there is none. */
export function partitionFor(stages: number, virtualStages: number): string | null {
  if (virtualStages === 1) return WIDE_MLP_PARTITIONS[stages] ?? null;
  return virtualStages === 2 ? (WIDE_MLP_INTERLEAVED_PARTITIONS[stages] ?? null) : null;
}

/** "interleaved V=2", "1f1b" */
export function scheduleLabel(c: ScheduleSpec): string {
  return c.virtualStages > 1 ? `${c.schedule} V=${c.virtualStages}` : c.schedule;
}

/** A case without its step count: what sameCase compares. */
export type CaseKey = Omit<PipelineCase, 'steps'>;

/** "P=4 1f1b M=8 +recompute", "P=4 interleaved V=2 M=8", "P=4 1f1b M=8 zeros sent" */
export function caseLabel(c: CaseKey): string {
  return (
    `P=${c.stages} ${scheduleLabel(c)} M=${c.microBatches}${c.recompute ? ' +recompute' : ''}` +
    (c.skipZeros === false ? ' zeros sent' : '')
  );
}

export function sameCase(a: CaseKey, b: CaseKey): boolean {
  return (
    a.stages === b.stages &&
    a.schedule === b.schedule &&
    a.virtualStages === b.virtualStages &&
    a.microBatches === b.microBatches &&
    a.recompute === b.recompute &&
    (a.skipZeros ?? true) === (b.skipZeros ?? true)
  );
}

/**
 * The runs in order: for each P, naive at M = 1, then every schedule of `s.schedules` at every M
 * (`steps` each; interleaved only where M >= P, its schedule's need); then each recompute case
 * twice, back to back, without and with recomputation, at `recomputeSteps` (more measured steps:
 * recomputation's cost is small beside the noise), and a third time with every zero sent between
 * stages (what skipping them saves). Throws ConfigError for a (P, V) without a partition or an M
 * the batch cannot hold.
 */
export function pipelineCases(s: PipelineSettings): PipelineCase[] {
  const issues: string[] = [];
  const checkP = (p: number, v = 1): void => {
    if (partitionFor(p, v) === null) issues.push(`no partition for P=${p}${v > 1 ? ` V=${v}` : ''}`);
  };
  const checkM = (m: number): void => {
    if (!Number.isInteger(m) || m < 1 || m > s.batch)
      issues.push(`M=${m} micro-batches do not fit a batch of ${s.batch}`);
  };
  for (const p of s.stages) {
    checkP(p);
    for (const spec of s.schedules) if (spec.virtualStages > 1) checkP(p, spec.virtualStages);
  }
  s.microBatches.forEach(checkM);
  const out: PipelineCase[] = [];
  const grid = { recompute: false, steps: s.steps };
  for (const stages of s.stages) {
    out.push({ stages, schedule: 'naive', virtualStages: 1, microBatches: 1, ...grid });
    for (const microBatches of s.microBatches) {
      for (const spec of s.schedules) {
        if (spec.schedule === 'interleaved' && microBatches < stages) continue;
        out.push({ stages, ...spec, microBatches, ...grid });
      }
    }
  }
  for (const r of s.recompute) {
    checkP(r.stages);
    checkM(r.microBatches);
    if (r.schedule === 'naive' && r.microBatches !== 1) issues.push(`naive runs M=1, not ${r.microBatches}`);
    for (const recompute of [false, true])
      out.push({ ...r, virtualStages: 1, recompute, steps: s.recomputeSteps });
    out.push({ ...r, virtualStages: 1, recompute: false, skipZeros: false, steps: s.recomputeSteps });
  }
  if (issues.length > 0) throw new ConfigError('invalid pipeline benchmark settings', issues);
  return out;
}

/** The run configuration of one case: wideMlp on synthetic data, explicit balanced partition, wasm. */
export function pipelineConfig(c: PipelineCase, s: PipelineSettings): RunConfigInput {
  const partition = partitionFor(c.stages, c.virtualStages);
  if (partition === null)
    throw new ConfigError('invalid pipeline case', [`no partition for ${caseLabel(c)}`]);
  return {
    strategy: 'pipeline',
    model: 'wideMlp',
    dataset: 'synthetic',
    workers: c.stages,
    steps: c.steps,
    batch: s.batch,
    schedule: c.schedule,
    microBatches: c.microBatches,
    ...(c.virtualStages > 1 ? { virtualStages: c.virtualStages } : {}),
    recompute: c.recompute,
    ...(c.skipZeros === false ? { activationSkipZeros: false } : {}),
    partition,
    // The fastest backend measured on this machine (wasm ~15 GFLOP/s, webgl ~1, cpu and SwiftShader webgpu <0.5); 'auto' would probe every tab.
    backend: 'wasm',
    // Only the final evaluation: periodic ones would sit inside the step times.
    evalEvery: 0,
  };
}

export type OkRow = Extract<PipelineRow, { ok: true }>;

/** The successful run of case `c` with the most steps (the latest of equals), or null. */
export function findRow(rows: readonly PipelineRow[], c: CaseKey, steps?: number): OkRow | null {
  let best: OkRow | null = null;
  for (const r of rows) {
    if (!r.ok || !sameCase(r, c) || (steps !== undefined && r.steps !== steps)) continue;
    if (!best || r.steps >= best.steps) best = r;
  }
  return best;
}

/** Step time after the warm-up when it was measured, else the coordinator's median over all steps. */
export function stepMs(r: OkRow): number {
  return r.steadyStepMs ?? r.stepMsMedian;
}

/** Samples per second after the warm-up when measured, else the coordinator's over all steps. */
export function samplesPerSec(r: OkRow): number {
  return r.steadySamplesPerSec ?? r.samplesPerSec;
}

/** Largest peak activation bytes over the stages, and which stage holds it. */
export function maxPeak(row: OkRow): { stage: number; bytes: number } {
  let best = { stage: 0, bytes: Number.NaN };
  row.perStage.forEach((s, stage) => {
    if (!(s.peakActivationBytes <= best.bytes)) best = { stage, bytes: s.peakActivationBytes };
  });
  return best;
}

export interface RecomputeCost extends ScheduleSpec {
  stages: number;
  microBatches: number;
  stepMs: number;
  stepMsRecompute: number;
  /** (with - without) / without: positive = slower. */
  stepIncrease: number;
  stage0PeakBytes: number;
  stage0PeakBytesRecompute: number;
  /** (without - with) / without: positive = less memory. */
  stage0PeakDecrease: number;
  maxPeakBytes: number;
  maxPeakBytesRecompute: number;
}

/** One entry per recompute case whose two runs (at recomputeSteps) both succeeded. */
export function recomputeCosts(rows: readonly PipelineRow[], s: PipelineSettings): RecomputeCost[] {
  const out: RecomputeCost[] = [];
  for (const plain of s.recompute) {
    const r = { ...plain, virtualStages: 1 };
    const without = findRow(rows, { ...r, recompute: false }, s.recomputeSteps);
    const withRe = findRow(rows, { ...r, recompute: true }, s.recomputeSteps);
    if (!without || !withRe) continue;
    const p0 = without.perStage[0]?.peakActivationBytes ?? Number.NaN;
    const p0re = withRe.perStage[0]?.peakActivationBytes ?? Number.NaN;
    out.push({
      ...r,
      stepMs: stepMs(without),
      stepMsRecompute: stepMs(withRe),
      stepIncrease: stepMs(withRe) / stepMs(without) - 1,
      stage0PeakBytes: p0,
      stage0PeakBytesRecompute: p0re,
      stage0PeakDecrease: 1 - p0re / p0,
      maxPeakBytes: maxPeak(without).bytes,
      maxPeakBytesRecompute: maxPeak(withRe).bytes,
    });
  }
  return out;
}

export interface ZeroSkipping {
  stages: number;
  schedule: ScheduleKind;
  microBatches: number;
  /** Bytes between stages per step, step ms and bubble with every zero sent, then with zeros skipped. */
  bytesSent: number | null;
  bytesSkipped: number | null;
  stepMsSent: number;
  stepMsSkipped: number;
  bubbleSent: number;
  bubbleSkipped: number;
}

/** One entry per recompute case whose run without recomputation and whose zeros-sent run both succeeded. */
export function zeroSkipping(rows: readonly PipelineRow[], s: PipelineSettings): ZeroSkipping[] {
  const out: ZeroSkipping[] = [];
  for (const r of s.recompute) {
    const key = { ...r, virtualStages: 1, recompute: false };
    const skipped = findRow(rows, key, s.recomputeSteps);
    const sent = findRow(rows, { ...key, skipZeros: false }, s.recomputeSteps);
    if (!skipped || !sent) continue;
    out.push({
      ...r,
      bytesSent: sent.bytesBetweenStagesPerStep,
      bytesSkipped: skipped.bytesBetweenStagesPerStep,
      stepMsSent: stepMs(sent),
      stepMsSkipped: stepMs(skipped),
      bubbleSent: sent.bubbleMeasured,
      bubbleSkipped: skipped.bubbleMeasured,
    });
  }
  return out;
}

export interface Headline {
  stages: number;
  microBatches: number;
  /** 1f1b's measured bubble; bubbleError = it minus (P-1)/(M+P-1); the target is |x| <= bubbleTolerance. */
  bubbleMeasured: number | null;
  bubbleTheory: number;
  bubbleError: number | null;
  bubbleTolerance: number;
  /** Stage 0's peak activation bytes: 1f1b / gpipe (target <= 0.5), and 1f1b +recompute / gpipe. */
  stage0Peak1f1b: number | null;
  stage0PeakGpipe: number | null;
  stage0PeakRecompute: number | null;
  peakRatio: number | null;
  peakRatioRecompute: number | null;
}

/**
 * The brief's checks at (P, M): 1F1B's bubble against theory, stage-0 memory against GPipe (each
 * from its run with the most steps).
 */
export function headline(rows: readonly PipelineRow[], stages: number, microBatches: number): Headline {
  const at = { stages, virtualStages: 1, microBatches };
  const f = findRow(rows, { ...at, schedule: '1f1b', recompute: false });
  const g = findRow(rows, { ...at, schedule: 'gpipe', recompute: false });
  const re = findRow(rows, { ...at, schedule: '1f1b', recompute: true });
  const peak0 = (r: OkRow | null): number | null => r?.perStage[0]?.peakActivationBytes ?? null;
  const div = (a: number | null, b: number | null): number | null => (a !== null && b ? a / b : null);
  const theory = bubbleTheory('1f1b', stages, microBatches);
  return {
    stages,
    microBatches,
    bubbleMeasured: f?.bubbleMeasured ?? null,
    bubbleTheory: theory,
    bubbleError: f ? f.bubbleMeasured - theory : null,
    bubbleTolerance: 0.1,
    stage0Peak1f1b: peak0(f),
    stage0PeakGpipe: peak0(g),
    stage0PeakRecompute: peak0(re),
    peakRatio: div(peak0(f), peak0(g)),
    peakRatioRecompute: div(peak0(re), peak0(g)),
  };
}
