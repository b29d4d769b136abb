import { bubbleTheory } from '@peertrain/schedules';
import { partitionFor } from './pipeline-cases.ts';
import type { OkRow, PipelineCase } from './pipeline-cases.ts';

// Rows for the pipeline tests (pipeline-cases.test.ts, pipeline-table.test.ts, report.test.ts).

/** A successful row: peak activation bytes per stage, the coordinator's step ms, overrides. */
export function okRow(c: PipelineCase, peaks: number[], step: number, extra: Partial<OkRow> = {}): OkRow {
  const theory = bubbleTheory(c.schedule, c.stages, c.microBatches, c.virtualStages);
  return {
    ...c,
    ok: true,
    partition: partitionFor(c.stages, c.virtualStages) ?? '',
    batch: 128,
    bubbleMeasured: theory + 0.05,
    bubbleTheory: theory,
    bytesBetweenStagesPerStep: null,
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

/** A case: P, schedule, M, recompute (default no), steps (default 6), V (default 1). */
export const key = (
  stages: number,
  schedule: PipelineCase['schedule'],
  microBatches: number,
  recompute = false,
  steps = 6,
  virtualStages = 1,
): PipelineCase => ({ stages, schedule, virtualStages, microBatches, recompute, steps });
