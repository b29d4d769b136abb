import type { RunView } from '@peertrain/coordinator';
import { runShape } from '@peertrain/protocol';

// The dashboard charts' columns, derived from the coordinator's RunView in one pass: plain number
// arrays (what uPlot takes), one entry per step, so a run of hours stays a few arrays of numbers.

/** Steps averaged for samples/s and utilization: single steps jitter (workers run ahead by a window). */
export const SMOOTH_STEPS = 5;

export type ChartAxis = 'step' | 'time';

export interface ChartColumns {
  /** Step index, and seconds since training started, per step. */
  step: number[];
  timeS: number[];
  loss: (number | null)[];
  /** Samples/s over the last SMOOTH_STEPS steps, and the mean since the start. */
  samplesPerSec: (number | null)[];
  samplesPerSecMean: number[];
  /** Bytes every peer sent during the step. */
  bytes: (number | null)[];
  /** Per rank: fraction of the last SMOOTH_STEPS steps' wall time it spent computing, 0..1. */
  utilization: (number | null)[][];
  evalStep: number[];
  evalTimeS: number[];
  accuracy: number[];
}

export function chartColumns(run: Pick<RunView, 'steps' | 'evals' | 'config'>): ChartColumns {
  const { steps } = run;
  const n = steps.length;
  const ranks = steps.reduce((m, s) => Math.max(m, s.computeMsByRank?.length ?? 0), 0);
  const globalBatch = run.config ? runShape(run.config).globalBatch : null;
  const c: ChartColumns = {
    step: new Array<number>(n),
    timeS: new Array<number>(n),
    loss: new Array<number | null>(n),
    samplesPerSec: new Array<number | null>(n),
    samplesPerSecMean: new Array<number>(n),
    bytes: new Array<number | null>(n),
    utilization: Array.from({ length: ranks }, () => new Array<number | null>(n)),
    evalStep: run.evals.map((e) => e.step),
    evalTimeS: run.evals.map((e) => e.tMs / 1000),
    accuracy: run.evals.map((e) => e.accuracy),
  };
  // Running sums over the window [i - SMOOTH_STEPS + 1, i]: wall ms, and compute ms per rank.
  let wallSum = 0;
  const computeSum = new Array<number>(ranks).fill(0);
  for (let i = 0; i < n; i++) {
    const s = steps[i]!;
    c.step[i] = s.step;
    c.timeS[i] = s.tMs / 1000;
    c.loss[i] = Number.isFinite(s.loss) ? s.loss : null;
    c.samplesPerSecMean[i] = s.samplesPerSec;
    c.bytes[i] = s.bytes ?? null;
    wallSum += s.stepMs ?? 0;
    for (let r = 0; r < ranks; r++) computeSum[r]! += s.computeMsByRank?.[r] ?? 0;
    const out = i - SMOOTH_STEPS;
    if (out >= 0) {
      const o = steps[out]!;
      wallSum -= o.stepMs ?? 0;
      for (let r = 0; r < ranks; r++) computeSum[r]! -= o.computeMsByRank?.[r] ?? 0;
    }
    const window = Math.min(i + 1, SMOOTH_STEPS);
    const wall = s.stepMs === undefined ? 0 : wallSum;
    c.samplesPerSec[i] = globalBatch !== null && wall > 0 ? (globalBatch * window) / (wall / 1000) : null;
    for (let r = 0; r < ranks; r++) {
      c.utilization[r]![i] = wall > 0 ? Math.min(1, Math.max(0, computeSum[r]! / wall)) : null;
    }
  }
  return c;
}
