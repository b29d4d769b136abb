import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { DeviceInfo, ToCoordinator } from '@peertrain/protocol';
import { stepPoint } from './intake.ts';
import type { StepRecord } from './intake.ts';
import { buildReport } from './report.ts';
import type { ReportInputs } from './report.ts';
import fixture from './fixtures/report.json';

// The recorded messages of fixtures/report.json, typed as the run records them.
function inputs(): ReportInputs {
  const f = fixture.inputs;
  return {
    config: parseRunConfig(f.config),
    globalBatch: 8, // 2 workers x batch 4
    steps: f.steps as StepRecord[],
    evals: f.evals as Extract<ToCoordinator, { type: 'evalResult' }>[],
    reference: f.reference as Extract<ToCoordinator, { type: 'referenceResult' }>,
    workers: f.workers.map((w) => ({ ...w, device: w.device as DeviceInfo | null })),
    wallMs: f.wallMs,
    trainMs: f.trainMs,
    methodFields: {},
    errors: f.errors,
  };
}

describe('buildReport', () => {
  it('turns recorded step and eval messages into the expected report', () => {
    const report = buildReport(inputs());
    const { stepPoints: _p, loss, ...fields } = fixture.expected;
    expect(report).toMatchObject(fields);
    // Losses are means in arrival order: equal to the fixture's to the last few bits.
    report.loss.forEach((l, i) => {
      expect(l.step).toBe(loss[i]!.step);
      expect(l.loss).toBeCloseTo(loss[i]!.loss, 12);
    });
    expect(report.errors).toEqual(fixture.inputs.errors);
    expect(report.pipeline).toBeUndefined();
  });

  it('gives the live view the same step points the report is built from', () => {
    const steps = inputs().steps;
    const points = steps.map((rec, i) => stepPoint(rec, steps[i - 1], 8));
    expect(points).toMatchObject(fixture.expected.stepPoints);
  });

  it('leaves the reference out when there is none and adds the method fields', () => {
    const pipeline = {
      schedule: '1f1b' as const,
      stages: 2,
      replicas: 1,
      microBatches: 4,
      recompute: false,
      bubbleMeasured: 0.2,
      bubbleTheory: 0.2,
      predictedStepMs: null,
      perStage: [],
    };
    const report = buildReport({ ...inputs(), reference: null, methodFields: { pipeline } });
    expect('reference' in report).toBe(false);
    expect(report.pipeline).toEqual(pipeline);
    // Key order is the report's JSON order (the CLI writes it as is): method fields before errors.
    expect(Object.keys(report).slice(-2)).toEqual(['pipeline', 'errors']);
  });

  it('has no accuracy without the final evaluation, and NaN medians without steps', () => {
    const report = buildReport({ ...inputs(), steps: [], evals: [] });
    expect(report.testAccuracy).toBeNaN();
    expect(report.finalLoss).toBeNaN();
    expect(report.stepMsMedian).toBeNaN();
    expect(report.loss).toEqual([]);
  });
});
