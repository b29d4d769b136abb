import type { DeviceInfo, LinkCounts, RunConfig, ToCoordinator, WireError } from '@peertrain/protocol';
import { UtilizationSums, mean, median, stepPoint } from './intake.ts';
import type { StepRecord } from './intake.ts';
import type { RunReport, TargetReport } from './types.ts';

type EvalResult = Extract<ToCoordinator, { type: 'evalResult' }>;
type ReferenceResult = Extract<ToCoordinator, { type: 'referenceResult' }>;

/** A worker as the report names it (a PeerRecord at the end of the run is one). */
export interface ReportWorker {
  peerId: string;
  role: string | null;
  /** A stage-role peer's place; null for an elastic pipeline's spare (it has none until it takes one). */
  stage?: object | null;
  device: DeviceInfo | null;
  bytesSent: number;
  framesRefused: number;
  links?: LinkCounts;
}

/**
 * The report's workers by rank (`ids`: an elastic run's joiners after the original ranks), each as
 * the coordinator knows it now (`current`): a member dropped and readmitted has a new record (its
 * device and bytes since it came back), a joiner has its own; a peer no longer listed keeps the
 * record it started with (`started`).
 */
export function workersByRank<W extends ReportWorker>(
  ids: readonly string[],
  current: ReadonlyMap<string, W>,
  started: readonly W[],
): W[] {
  return ids.map((id) => {
    const w = current.get(id) ?? started.find((s) => s.peerId === id);
    if (!w) throw new RangeError(`no record of worker ${id}`);
    return w;
  });
}

/**
 * Fields a training method adds to the report (CoordinatorMethod's `reportFields`). `compression`
 * replaces the report's own `{ spec }` (a method that measures its bytes ratio gives both).
 */
export type MethodReportFields = Pick<RunReport, 'pipeline' | 'compression' | 'staleness'>;

/** Everything a report is built from: what was recorded during the run, nothing live. */
export interface ReportInputs {
  config: RunConfig;
  /** Samples per step over all ranks (runShape(config).globalBatch). */
  globalBatch: number;
  /** Every step, in order. */
  steps: readonly StepRecord[];
  /** Evaluation results in arrival order; the one at step config.steps is the final accuracy. */
  evals: readonly EvalResult[];
  reference: ReferenceResult | null;
  /** By rank. */
  workers: readonly ReportWorker[];
  /** From the run's start (waiting for workers included) to the report. */
  wallMs: number;
  /** From the first step's grant to the last step's end (its evaluation included). */
  trainMs: number;
  methodFields: Partial<MethodReportFields>;
  errors: WireError[];
  /**
   * The first evaluation at or above config.targetAccuracy: its step (steps done) and when it
   * arrived, ms after the first step's grant (the run ends there). Absent or null: not reached.
   */
  target?: { step: number; atMs: number } | null;
}

/** The run's report: a pure function of what the run recorded. */
export function buildReport(inputs: ReportInputs): RunReport {
  const { config, steps: records, globalBatch } = inputs;
  const steps = records.map((rec, i) => stepPoint(rec, records[i - 1], globalBatch));
  // Steps the run took: all of them, or those up to the evaluation that reached the target.
  const done = Math.min(config.steps, inputs.target?.step ?? config.steps);
  const finalEval = [...inputs.evals].reverse().find((e) => e.step === done);
  const reference = inputs.reference;
  const bytesSent = inputs.workers.reduce((a, p) => a + p.bytesSent, 0);
  const sums = new UtilizationSums(inputs.workers.length);
  records.forEach((rec) => sums.add(rec));
  const utilization = sums.byRank();
  const extra = extraSamplesByRank(records, inputs.workers.length);
  return {
    config,
    finalLoss: steps[steps.length - 1]?.loss ?? NaN,
    testAccuracy: finalEval?.accuracy ?? NaN,
    ...(config.targetAccuracy !== undefined
      ? { target: targetReport(config.targetAccuracy, inputs.target ?? null, records, globalBatch) }
      : {}),
    wallMs: inputs.wallMs,
    stepMsMedian: median(steps.map((s) => s.stepMs ?? NaN)),
    computeMsMedian: median(steps.map((s) => s.computeMs)),
    commMsMedian: median(steps.map((s) => s.commMs)),
    samplesPerSec: (globalBatch * done) / (inputs.trainMs / 1000),
    bytesSent,
    bytesPerSample: bytesSent / (globalBatch * done),
    computeUtilization: mean(utilization),
    workers: inputs.workers.map((p, rank) => ({
      peerId: p.peerId,
      rank,
      role: p.role === 'stage' && p.stage === null ? 'spare' : (p.role ?? 'worker'),
      backend: p.device?.backend ?? 'unknown',
      gflops: p.device?.gflops ?? 0,
      bytesSent: p.bytesSent,
      framesRefused: p.framesRefused,
      ...(p.device?.adapter ? { adapter: p.device.adapter } : {}),
      computeUtilization: utilization[rank] ?? NaN,
      ...(p.device?.computeThread === true ? { computeThread: true as const } : {}),
      ...(extra[rank]! > 0 ? { extraSamples: extra[rank]! } : {}),
      ...(p.links ? { links: p.links } : {}),
    })),
    loss: steps.map((s) => ({ step: s.step, loss: s.loss })),
    evals: inputs.evals.map((e) => ({ step: e.step, accuracy: e.accuracy })),
    ...(reference
      ? {
          reference: {
            maxAbsDiff: reference.maxAbsDiff,
            maxRelDiff: reference.maxRelDiff,
            referenceLoss: reference.referenceLoss,
          },
        }
      : {}),
    ...(config.compress !== 'none' ? { compression: { spec: config.compress } } : {}),
    ...inputs.methodFields,
    errors: inputs.errors,
  };
}

/** Per rank, the samples of DiLoCo's fill steps (stepDone.extraSamples) over the run. */
function extraSamplesByRank(records: readonly StepRecord[], ranks: number): number[] {
  const sums = new Array<number>(ranks).fill(0);
  for (const rec of records)
    for (const { rank, msg } of rec.reports) if (rank < ranks) sums[rank]! += msg.extraSamples ?? 0;
  return sums;
}

/** What the run took to reach the target; `records` are the steps in order (step i at index i). */
function targetReport(
  accuracy: number,
  hit: { step: number; atMs: number } | null,
  records: readonly StepRecord[],
  globalBatch: number,
): TargetReport {
  if (!hit) {
    const none = { step: null, timeToTargetMs: null, samplesToTarget: null, bytesToTarget: null };
    return { accuracy, reached: false, ...none };
  }
  // stepDone carries each rank's running total of bytes sent: the last step's totals, summed.
  const last = records[Math.min(hit.step, records.length) - 1];
  return {
    accuracy,
    reached: true,
    step: hit.step,
    timeToTargetMs: hit.atMs,
    samplesToTarget: globalBatch * hit.step,
    bytesToTarget: last?.reports.reduce((a, r) => a + r.msg.bytesSent, 0) ?? 0,
  };
}
