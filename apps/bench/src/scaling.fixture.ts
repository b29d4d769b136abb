import type { RunReport } from '@peertrain/coordinator';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunFigures, ScalingRow, Timeline } from './scaling-figures.ts';

// Fixtures for the scaling tests (scaling-figures.test.ts, scaling-table.test.ts).

/** A report of `steps` steps at `sps` samples/s, as main's coordinator writes it (no newer fields). */
export function fixtureReport(steps: number, extra: Partial<RunReport> = {}): RunReport {
  return {
    config: parseRunConfig({ workers: 2, batch: 48, steps: 600, targetAccuracy: 0.92, evalEvery: 10 }),
    finalLoss: 0.3,
    testAccuracy: 0.93,
    wallMs: 5000,
    stepMsMedian: 10,
    computeMsMedian: 6,
    commMsMedian: 4,
    samplesPerSec: 9600,
    bytesSent: 96_000 * steps,
    workers: [0, 1].map((rank) => ({
      peerId: `w${rank}`,
      rank,
      role: 'worker',
      backend: 'wasm',
      gflops: 1,
      bytesSent: 48_000 * steps,
      framesRefused: 0,
    })),
    loss: Array.from({ length: steps }, (_, step) => ({ step, loss: 1 })),
    evals: [
      { step: 10, accuracy: 0.85 },
      { step: 20, accuracy: 0.93 },
    ],
    errors: [],
    ...extra,
  };
}

/**
 * `steps` steps of 10 ms (6 compute, 4 comm, 1000 bytes each, but step 0 carries 50,000 bytes of
 * an earlier run of the same tabs, as a worker's running total does); evaluations at 10 and 20 steps.
 */
export function fixtureTimeline(steps: number): Timeline {
  return {
    steps: Array.from({ length: steps }, (_, step) => ({
      step,
      tMs: 10 * (step + 1),
      computeMs: 6,
      commMs: 4,
      bytes: step === 0 ? 51_000 : 1000,
    })),
    evals: [
      { step: 10, accuracy: 0.85, tMs: 105 },
      { step: 20, accuracy: 0.93, tMs: 205 },
    ],
  };
}

/** Figures of a run that reached its target in `timeMs` at `sps` samples/s. */
export function figures(timeMs: number | null, sps: number, extra: Partial<RunFigures> = {}): RunFigures {
  return {
    steps: 20,
    target: {
      reached: timeMs !== null,
      step: timeMs === null ? null : 20,
      timeMs,
      samples: timeMs === null ? null : 1920,
      bytes: timeMs === null ? null : 20_000,
      source: 'report',
    },
    samplesPerSec: sps,
    computeUtilization: 0.5,
    utilizationByRank: null,
    bytesSent: 20_000,
    bytesPerSample: 10.4,
    bytesPerStep: 1000,
    finalAccuracy: 0.93,
    staleness: null,
    compressionRatio: null,
    backends: ['wasm'],
    ...extra,
  };
}

export function row(
  method: string,
  tabs: number,
  f: RunFigures | string,
  model: 'mlp' | 'cnn' = 'mlp',
): ScalingRow {
  const base = { model, target: 0.92, method, label: method, tabs, batch: 96 / tabs };
  return typeof f === 'string'
    ? { ...base, ok: false, error: f }
    : { ...base, ok: true, figures: f, ratios: null };
}
