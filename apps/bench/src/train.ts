import type { Browser } from 'playwright-core';
import { runSession } from '@peertrain/harness';
import type { RunConfigInput } from '@peertrain/protocol';
import type { BenchSettings, TrainFigure } from './report.ts';

// Part 3: a real training session through the dashboard and worker pages (runSession), once per
// synchronisation mode; the step split comes from the coordinator's RunReport.

const WORKERS = 3;
const BATCH = 32;

export function trainConfig(sync: 'allreduce' | 'ps', steps: number): RunConfigInput {
  return {
    strategy: 'data',
    sync,
    model: 'mlp',
    dataset: 'mnist',
    workers: WORKERS,
    steps,
    batch: BATCH,
    backend: 'wasm',
    // Only the final evaluation: periodic ones would sit inside the step times.
    evalEvery: 0,
  };
}

export async function measureTraining(opts: {
  browser: Browser;
  dist: string;
  settings: BenchSettings;
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<TrainFigure[]> {
  const figures: TrainFigure[] = [];
  for (const sync of ['allreduce', 'ps'] as const) {
    opts.signal?.throwIfAborted();
    const config = trainConfig(sync, opts.settings.trainSteps);
    try {
      const report = await runSession({
        config,
        browser: opts.browser,
        dist: opts.dist,
        idleTimeoutMs: 60_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      figures.push({
        sync,
        ok: true,
        workers: report.config.workers,
        steps: report.config.steps,
        batch: report.config.batch,
        backend: report.config.backend,
        stepMsMedian: report.stepMsMedian,
        computeMsMedian: report.computeMsMedian,
        commMsMedian: report.commMsMedian,
        samplesPerSec: report.samplesPerSec,
        bytesSent: report.bytesSent,
        finalLoss: report.finalLoss,
        testAccuracy: report.testAccuracy,
        wallMs: report.wallMs,
        workerBackends: [...new Set(report.workers.map((w) => w.backend))],
      });
      opts.log(`train ${sync}: step ${report.stepMsMedian.toFixed(1)} ms`);
    } catch (err) {
      opts.signal?.throwIfAborted();
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      figures.push({ sync, ok: false, error });
      opts.log(`train ${sync} failed: ${error}`);
    }
  }
  return figures;
}
