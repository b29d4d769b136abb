import type { DeviceInfo, RunConfig, ToCoordinator, WireError } from '@peertrain/protocol';
import { median, stepPoint } from './intake.ts';
import type { StepRecord } from './intake.ts';
import type { RunReport } from './types.ts';

type EvalResult = Extract<ToCoordinator, { type: 'evalResult' }>;
type ReferenceResult = Extract<ToCoordinator, { type: 'referenceResult' }>;

/** A worker as the report names it (a PeerRecord at the end of the run is one). */
export interface ReportWorker {
  peerId: string;
  role: string | null;
  device: DeviceInfo | null;
  bytesSent: number;
  framesRefused: number;
}

/** Fields a training method adds to the report (CoordinatorMethod's `reportFields`). */
export type MethodReportFields = Pick<RunReport, 'pipeline' | 'staleness'>;

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
}

/** The run's report: a pure function of what the run recorded. */
export function buildReport(inputs: ReportInputs): RunReport {
  const { config, steps: records, globalBatch } = inputs;
  const steps = records.map((rec, i) => stepPoint(rec, records[i - 1], globalBatch));
  const finalEval = [...inputs.evals].reverse().find((e) => e.step === config.steps);
  const reference = inputs.reference;
  return {
    config,
    finalLoss: steps[steps.length - 1]?.loss ?? NaN,
    testAccuracy: finalEval?.accuracy ?? NaN,
    wallMs: inputs.wallMs,
    stepMsMedian: median(steps.map((s) => s.stepMs ?? NaN)),
    computeMsMedian: median(steps.map((s) => s.computeMs)),
    commMsMedian: median(steps.map((s) => s.commMs)),
    samplesPerSec: (globalBatch * config.steps) / (inputs.trainMs / 1000),
    bytesSent: inputs.workers.reduce((a, p) => a + p.bytesSent, 0),
    workers: inputs.workers.map((p, rank) => ({
      peerId: p.peerId,
      rank,
      role: p.role ?? 'worker',
      backend: p.device?.backend ?? 'unknown',
      gflops: p.device?.gflops ?? 0,
      bytesSent: p.bytesSent,
      framesRefused: p.framesRefused,
      ...(p.device?.adapter ? { adapter: p.device.adapter } : {}),
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
    ...inputs.methodFields,
    errors: inputs.errors,
  };
}
