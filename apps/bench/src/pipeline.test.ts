import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/protocol';
import { toChromeTrace } from '@peertrain/telemetry';
import type { Span } from '@peertrain/telemetry';
import { pipelineSettings } from './args.ts';
import type { CpuMark } from './measure.ts';
import { pipelineConfig } from './pipeline-cases.ts';
import { pipelineRow } from './pipeline.ts';
import { key } from './pipeline.fixture.ts';

const c = key(2, '1f1b', 2, false, 5);
const config = parseRunConfig(pipelineConfig(c, pipelineSettings(false)));

function report(withPipeline = true): RunReport {
  return {
    config,
    finalLoss: 2.3,
    testAccuracy: 0.1,
    wallMs: 9000,
    stepMsMedian: 500,
    computeMsMedian: 200,
    commMsMedian: 300,
    samplesPerSec: 200,
    bytesSent: 1e6,
    workers: [
      { peerId: 'a', rank: 0, role: 'stage', backend: 'wasm', gflops: 5, bytesSent: 5e5, framesRefused: 0 },
      { peerId: 'b', rank: 1, role: 'stage', backend: 'wasm', gflops: 5, bytesSent: 5e5, framesRefused: 0 },
    ],
    loss: [],
    evals: [],
    errors: [],
    ...(withPipeline
      ? {
          pipeline: {
            schedule: '1f1b',
            stages: 2,
            replicas: 1,
            microBatches: 2,
            recompute: false,
            bubbleMeasured: 0.4,
            bubbleTheory: 1 / 3,
            predictedStepMs: null,
            perStage: [0, 1].map((stage) => ({
              stage,
              layers: stage === 0 ? ([0, 3] as [number, number]) : ([4, 8] as [number, number]),
              layerNames: [],
              parameterBytes: 7_413_760,
              peakActivationBytes: 1000 * (stage + 1),
              peakActivationBytesNoRecompute: 1000 * (stage + 1),
              peerId: stage === 0 ? 'a' : 'b',
            })),
          },
        }
      : {}),
  };
}

function compute(peerId: string, kind: 'forward' | 'backward', step: number, startMs: number): Span {
  return { peerId, kind, step, startMs, durMs: 1, lane: 'compute', microBatch: 0 };
}

const trace = toChromeTrace(
  [3, 4].flatMap((step) => [
    compute('a', 'forward', step, 10 * step),
    compute('b', 'forward', step, 10 * step + 1),
    compute('b', 'backward', step, 10 * step + 2),
    compute('a', 'backward', step, 10 * step + 3),
  ]),
  { peerNames: { a: 'rank 0: stage 0 (layers 0-3)', b: 'rank 1: stage 1 (layers 4-8)' } },
);

const mark = (t: number, busy: number): CpuMark => ({
  t,
  machine: { busy, total: 2 * t },
  chromium: new Map(),
});

describe('pipelineRow', () => {
  it('takes the figures from the report, the spans from the trace and the steady rate from the marks', () => {
    const row = pipelineRow(
      c,
      report(),
      trace,
      3,
      { a: mark(1000, 500), b: mark(3000, 4500), steps: 2 },
      null,
    );
    expect(row).toMatchObject({
      ...c,
      ok: true,
      partition: '0-3,4-8',
      batch: 128,
      bubbleMeasured: 0.4,
      stepMsMedian: 500,
      samplesPerSec: 200,
      steadyStepMs: 1000,
      steadySamplesPerSec: 128,
      backends: ['wasm'],
      perStage: [
        { layers: [0, 3], peakActivationBytes: 1000 },
        { layers: [4, 8], peakActivationBytes: 2000 },
      ],
    });
    if (!row.ok) throw new Error('expected a successful row');
    // Busy 4000 of 4000 machine-ms over the 2000 ms window.
    expect(row.cpu?.machineBusy).toBeCloseTo(1, 12);
    expect(row.cpu?.wallMs).toBe(2000);
    expect(row.spans?.steps).toEqual([3, 4]);
    // Each step: 0-1 stage 0, 1-3 stage 1, 3-4 stage 0: makespan 4, busy 4 of 8.
    expect(row.spans?.bubble).toBeCloseTo(0.5, 12);
  });

  it('has no steady figures without both marks, and fails without a pipeline section', () => {
    const row = pipelineRow(c, report(), trace, 3, null, null);
    expect(row).toMatchObject({ ok: true, steadyStepMs: null, steadySamplesPerSec: null, cpu: null });
    expect(pipelineRow(c, report(false), trace, 3, null, null)).toEqual({
      ...c,
      ok: false,
      error: 'the report has no pipeline section',
    });
  });
});
