import type { RunView, StepPoint } from '@peertrain/coordinator';

/** Steps used for the recent rate: long enough to smooth jitter, short enough to follow changes. */
export const RATE_WINDOW = 20;

export interface RunProgress {
  step: number;
  totalSteps: number;
  /** 0..1 */
  fraction: number;
  /** Recent global samples per second, null before two steps are known. */
  samplesPerSec: number | null;
  /** Recent wall time per step, null before two steps are known. */
  stepMs: number | null;
  /** Time left at the recent step rate; 0 when finished; null when unknown. */
  etaMs: number | null;
  lastLoss: number | null;
}

function recentRate(steps: readonly StepPoint[]): { stepMs: number; samplesPerSec: number } | null {
  const last = steps[steps.length - 1];
  const first = steps[Math.max(0, steps.length - 1 - RATE_WINDOW)];
  if (!last || !first || last === first) return null;
  const dSteps = last.step - first.step;
  const dMs = last.tMs - first.tMs;
  if (dSteps <= 0 || dMs <= 0) return null;
  // Mean of the points' own rates over the window (each counts the global batch of its step).
  const window = steps.slice(Math.max(0, steps.length - RATE_WINDOW));
  const samplesPerSec = window.reduce((s, p) => s + p.samplesPerSec, 0) / window.length;
  return { stepMs: dMs / dSteps, samplesPerSec };
}

export function runProgress(run: RunView): RunProgress {
  const total = Math.max(0, run.totalSteps);
  const step = Math.min(Math.max(0, run.step), total);
  const rate = recentRate(run.steps);
  const finished = total > 0 && step >= total;
  return {
    step,
    totalSteps: total,
    fraction: total > 0 ? step / total : 0,
    samplesPerSec: rate?.samplesPerSec ?? null,
    stepMs: rate?.stepMs ?? null,
    etaMs: finished ? 0 : rate ? (total - step) * rate.stepMs : null,
    lastLoss: run.steps[run.steps.length - 1]?.loss ?? null,
  };
}
