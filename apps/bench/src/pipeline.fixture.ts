import { WIDE_MLP_PARTITIONS } from './pipeline-cases.ts';
import type { OkRow, PipelineCase } from './pipeline-cases.ts';

// Rows for the pipeline tests (pipeline-cases.test.ts, pipeline-table.test.ts, report.test.ts).

/** A successful row: peak activation bytes per stage, the coordinator's step ms, overrides. */
export function okRow(c: PipelineCase, peaks: number[], step: number, extra: Partial<OkRow> = {}): OkRow {
  const theory = (c.stages - 1) / (c.microBatches + c.stages - 1);
  return {
    ...c,
    ok: true,
    partition: WIDE_MLP_PARTITIONS[c.stages] ?? '',
    batch: 128,
    bubbleMeasured: theory + 0.05,
    bubbleTheory: theory,
    samplesPerSec: 128_000 / step / 2,
    stepMsMedian: step,
    steadyStepMs: null,
    steadySamplesPerSec: null,
    wallMs: 10_000,
    perStage: peaks.map((p, i) => ({
      layers: [2 * i, 2 * i + 1],
      parameterBytes: 4_198_400,
      peakActivationBytes: p,
      peakActivationBytesNoRecompute: c.recompute ? 2 * p : p,
    })),
    backends: ['wasm'],
    spans: null,
    cpu: null,
    ...extra,
  };
}

/** A case: P, schedule, M, recompute (default no), steps (default 6). */
export const key = (
  stages: number,
  schedule: PipelineCase['schedule'],
  microBatches: number,
  recompute = false,
  steps = 6,
): PipelineCase => ({ stages, schedule, microBatches, recompute, steps });
