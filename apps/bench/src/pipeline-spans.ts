import type { ChromeTrace, ChromeTraceEvent } from '@peertrain/protocol';
import { median } from './metrics.ts';

// Where a pipeline step's time goes, from the run's Chrome trace (the coordinator's spans of every
// stage on its own clock). Pure: tested in pipeline-spans.test.ts.
//
// Per measured step (after the warm-up steps) and per stage: forward and backward time (the
// compute lane), communication (send / recv / wait spans, which may overlap compute), and idle
// time inside the step's makespan (first forward start to last backward end, as the coordinator's
// measured bubble uses). Then two figures that say why a measured bubble differs from
// (P-1)/(M+P-1):
// - imbalanceBubble: the bubble a pipeline with these measured stage times would have with free
//   links and a core per stage, T = sum_i c_i + (M-1) max_i c_i with c_i a stage's compute per
//   micro-batch (equal stages give exactly the theory).
// - concurrency: the fraction of the makespan during which k stages computed at once. On a
//   machine with fewer cores than stages, k above the core count means stretched spans.

export interface StageSpans {
  stage: number;
  /** Median over measured steps of the stage's summed forward spans, ms. */
  forwardMs: number;
  backwardMs: number;
  /** send + recv + wait spans (the communication lane; may overlap compute), ms. */
  commMs: number;
  /** Makespan minus this stage's forward and backward time, ms. */
  idleMs: number;
}

export interface PipelineSpanAnalysis {
  /** Steps analysed (those at or after the warm-up; all of them when none is). */
  steps: number[];
  /** Median makespan: first forward start to last backward end of the step, ms. */
  makespanMs: number;
  /** Median of 1 - (sum of forward + backward) / (P x makespan): the coordinator's figure, recomputed. */
  bubble: number;
  /** The bubble these stage times give with free links and a core per stage (see top). */
  imbalanceBubble: number;
  /** Median of sum(forward + backward) / makespan: how many stages computed at once on average. */
  meanConcurrency: number;
  /** Mean over steps of the fraction of the makespan with k = 0..P stages computing at once. */
  concurrency: number[];
  stages: StageSpans[];
}

interface StepSpan {
  stage: number;
  kind: string;
  step: number;
  startUs: number;
  endUs: number;
}

/** "rank 1: stage 1 (layers 2-3)" or, in a hybrid run, "rank 5: stage 1 replica 1 (layers 2-3)". */
const STAGE_IN_NAME = /\bstage (\d+)(?: replica (\d+))?\b/;
const COMM_KINDS = new Set(['send', 'recv', 'wait']);
const COMPUTE_KINDS = new Set(['forward', 'backward']);

/** pid -> stage of replica 0, from the process_name metadata. */
function stageOfPid(events: readonly ChromeTraceEvent[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of events) {
    if (e.ph !== 'M' || e.name !== 'process_name') continue;
    const name = e.args?.name;
    const m = typeof name === 'string' ? STAGE_IN_NAME.exec(name) : null;
    if (m?.[1] !== undefined && Number(m[2] ?? 0) === 0) out.set(e.pid, Number(m[1]));
  }
  return out;
}

function stepSpans(trace: ChromeTrace, stages: number): StepSpan[] {
  const stageOf = stageOfPid(trace.traceEvents);
  const out: StepSpan[] = [];
  for (const e of trace.traceEvents) {
    if (e.ph !== 'X' || e.ts === undefined || e.dur === undefined) continue;
    const step = e.args?.step;
    const stage = stageOf.get(e.pid);
    if (typeof step !== 'number' || stage === undefined || stage >= stages) continue;
    const kind = e.name.split(' ')[0] ?? '';
    out.push({ stage, kind, step, startUs: e.ts, endUs: e.ts + e.dur });
  }
  return out;
}

/** Fraction of [start, end) during which k = 0..maxK intervals overlap. */
export function overlapProfile(
  intervals: readonly { startUs: number; endUs: number }[],
  startUs: number,
  endUs: number,
  maxK: number,
): number[] {
  const hist = new Array<number>(maxK + 1).fill(0);
  const total = endUs - startUs;
  if (!(total > 0)) return hist;
  const edges: [number, number][] = [];
  for (const iv of intervals) {
    const a = Math.max(startUs, iv.startUs);
    const b = Math.min(endUs, iv.endUs);
    if (b > a) edges.push([a, 1], [b, -1]);
  }
  // Ends before starts at the same instant: touching spans do not count as overlapping.
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let k = 0;
  let last = startUs;
  for (const [t, d] of edges) {
    const idx = Math.min(k, maxK);
    hist[idx] = (hist[idx] ?? 0) + (t - last);
    last = t;
    k += d;
  }
  hist[0] = (hist[0] ?? 0) + (endUs - last);
  return hist.map((x) => x / total);
}

/**
 * The pipeline bubble of stages whose compute per micro-batch is `perMicroBatchMs[i]`, with free
 * links and a core per stage: 1 - M sum(c) / (P (sum(c) + (M-1) max(c))). Equal stages give
 * (P-1)/(M+P-1). NaN when there is no compute.
 */
export function imbalanceBubble(perMicroBatchMs: readonly number[], microBatches: number): number {
  const p = perMicroBatchMs.length;
  const sum = perMicroBatchMs.reduce((a, c) => a + c, 0);
  const max = Math.max(0, ...perMicroBatchMs);
  if (!(sum > 0) || p === 0 || microBatches < 1) return Number.NaN;
  return 1 - (microBatches * sum) / (p * (sum + (microBatches - 1) * max));
}

/**
 * Analyses one pipeline run's trace (replica 0's `stages` stages). Steps before `warmupSteps` are
 * left out when later ones exist. Returns null when the trace holds no forward or backward span.
 */
export function analyzePipelineTrace(
  trace: ChromeTrace,
  opts: { stages: number; microBatches: number; warmupSteps: number },
): PipelineSpanAnalysis | null {
  const { stages: P, microBatches: M } = opts;
  const spans = stepSpans(trace, P);
  const computeSteps = [...new Set(spans.filter((s) => COMPUTE_KINDS.has(s.kind)).map((s) => s.step))].sort(
    (a, b) => a - b,
  );
  if (computeSteps.length === 0 || P < 1) return null;
  const late = computeSteps.filter((s) => s >= opts.warmupSteps);
  const steps = late.length > 0 ? late : computeSteps;

  const perStep = steps.map((step) => {
    const here = spans.filter((s) => s.step === step);
    const compute = here.filter((s) => COMPUTE_KINDS.has(s.kind));
    const start = Math.min(...compute.map((s) => s.startUs));
    const end = Math.max(...compute.map((s) => s.endUs));
    const makespanUs = end - start;
    const sumOf = (stage: number, kinds: ReadonlySet<string>): number =>
      here.filter((s) => s.stage === stage && kinds.has(s.kind)).reduce((a, s) => a + s.endUs - s.startUs, 0);
    const stageFigures = Array.from({ length: P }, (_, stage) => ({
      forwardUs: sumOf(stage, new Set(['forward'])),
      backwardUs: sumOf(stage, new Set(['backward'])),
      commUs: sumOf(stage, COMM_KINDS),
    }));
    const busyUs = stageFigures.reduce((a, f) => a + f.forwardUs + f.backwardUs, 0);
    return {
      makespanUs,
      busyUs,
      stageFigures,
      profile: overlapProfile(compute, start, end, P),
    };
  });

  const ms = (us: number): number => us / 1000;
  const stageSpans: StageSpans[] = Array.from({ length: P }, (_, stage) => {
    const pick = (f: (x: (typeof perStep)[number]) => number): number => ms(median(perStep.map(f)));
    const fwd = (x: (typeof perStep)[number]): number => x.stageFigures[stage]?.forwardUs ?? 0;
    const bwd = (x: (typeof perStep)[number]): number => x.stageFigures[stage]?.backwardUs ?? 0;
    return {
      stage,
      forwardMs: pick(fwd),
      backwardMs: pick(bwd),
      commMs: pick((x) => x.stageFigures[stage]?.commUs ?? 0),
      idleMs: pick((x) => x.makespanUs - fwd(x) - bwd(x)),
    };
  });
  const concurrency = Array.from({ length: P + 1 }, (_, k) =>
    perStep.length === 0 ? 0 : perStep.reduce((a, x) => a + (x.profile[k] ?? 0), 0) / perStep.length,
  );
  return {
    steps,
    makespanMs: ms(median(perStep.map((x) => x.makespanUs))),
    bubble: median(perStep.map((x) => (x.makespanUs > 0 ? 1 - x.busyUs / (P * x.makespanUs) : Number.NaN))),
    imbalanceBubble: imbalanceBubble(
      stageSpans.map((s) => (s.forwardMs + s.backwardMs) / M),
      M,
    ),
    meanConcurrency: median(perStep.map((x) => (x.makespanUs > 0 ? x.busyUs / x.makespanUs : Number.NaN))),
    concurrency,
    stages: stageSpans,
  };
}
