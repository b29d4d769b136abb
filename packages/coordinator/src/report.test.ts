import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { DeviceInfo, ToCoordinator } from '@peertrain/protocol';
import { stepPoint } from './intake.ts';
import type { StepRecord } from './intake.ts';
import { buildReport, workersByRank } from './report.ts';
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

  it("counts the time between a rank's steps (idleMs) in its wall time for utilization", () => {
    const base = inputs();
    const plain = buildReport(base).workers.map((w) => w.computeUtilization);
    // Every report after a rank's first says it waited 10 ms since its previous step ended.
    const steps = base.steps.map((rec) => ({
      ...rec,
      reports: rec.reports.map((r) => (r.msg.step > 0 ? { ...r, msg: { ...r.msg, idleMs: 10 } } : r)),
    }));
    const report = buildReport({ ...base, steps });
    report.workers.forEach((w, rank) => {
      const own = base.steps.flatMap((s) => s.reports.filter((r) => r.rank === rank).map((r) => r.msg));
      const compute = own.reduce((a, m) => a + m.computeMs, 0);
      const busy = own.reduce((a, m) => a + m.computeMs + m.commMs, 0);
      expect(plain[rank]).toBeCloseTo(compute / busy, 12);
      expect(w.computeUtilization).toBeCloseTo(compute / (busy + 10 * (own.length - 1)), 12);
    });
    // A step every rank gave idleMs for takes the ranks' mean wall time, not the arrival gap.
    const last = steps[steps.length - 1]!;
    const walls = last.reports.map((r) => r.msg.computeMs + r.msg.commMs + 10);
    expect(stepPoint(last, steps[steps.length - 2], 8).stepMs).toBeCloseTo(
      walls.reduce((a, b) => a + b, 0) / walls.length,
      12,
    );
    expect(stepPoint(steps[0]!, undefined, 8).stepMs).toBe(steps[0]!.doneAtMs);
  });

  it("sums each rank's fill samples (stepDone.extraSamples), without counting them in samples/s", () => {
    const base = inputs();
    const plain = buildReport(base);
    expect(plain.workers.every((w) => !('extraSamples' in w))).toBe(true);
    // Rank 1 took 2 fill steps of batch 4 at every step's report.
    const steps = base.steps.map((rec) => ({
      ...rec,
      reports: rec.reports.map((r) => (r.rank === 1 ? { ...r, msg: { ...r.msg, extraSamples: 8 } } : r)),
    }));
    const report = buildReport({ ...base, steps });
    expect('extraSamples' in report.workers[0]!).toBe(false);
    expect(report.workers[1]!.extraSamples).toBe(8 * steps.length);
    expect(report.samplesPerSec).toBe(plain.samplesPerSec);
  });

  it('has no accuracy without the final evaluation, and NaN medians without steps', () => {
    const report = buildReport({ ...inputs(), steps: [], evals: [] });
    expect(report.testAccuracy).toBeNaN();
    expect(report.finalLoss).toBeNaN();
    expect(report.stepMsMedian).toBeNaN();
    expect(report.loss).toEqual([]);
  });

  it('keeps the existing fields in their order and adds only utilization and bytes per sample', () => {
    const keys = Object.keys(buildReport(inputs()));
    const added = ['bytesPerSample', 'computeUtilization'];
    expect(keys.filter((k) => !added.includes(k))).toEqual([
      ...['config', 'finalLoss', 'testAccuracy', 'wallMs', 'stepMsMedian', 'computeMsMedian'],
      ...['commMsMedian', 'samplesPerSec', 'bytesSent', 'workers', 'loss', 'evals', 'reference', 'errors'],
    ]);
    expect(keys.indexOf('bytesPerSample')).toBe(keys.indexOf('bytesSent') + 1);
  });

  it('ends at the step whose evaluation reached the target: accuracy, samples, bytes and time to it', () => {
    const base = inputs();
    const config = parseRunConfig({ ...fixture.inputs.config, targetAccuracy: 0.5 });
    const report = buildReport({
      ...base,
      config,
      steps: base.steps.slice(0, 2),
      target: { step: 2, atMs: 260 },
    });
    expect(report.target).toEqual({
      accuracy: 0.5,
      reached: true,
      step: 2,
      timeToTargetMs: 260,
      samplesToTarget: 16, // 2 steps x global batch 8
      bytesToTarget: 1500 + 1400, // each rank's running total after step 1
    });
    expect(report.testAccuracy).toBe(0.5); // the evaluation at step 2, not the one at config.steps
    expect(report.samplesPerSec).toBe(16 / 0.4);
    expect(Object.keys(report).slice(2, 4)).toEqual(['testAccuracy', 'target']);
  });

  it('says a target never reached, with no step, time, samples or bytes', () => {
    const config = parseRunConfig({ ...fixture.inputs.config, targetAccuracy: 0.9 });
    const report = buildReport({ ...inputs(), config, target: null });
    const { accuracy, reached, ...rest } = report.target!;
    expect([accuracy, reached]).toEqual([0.9, false]);
    expect(Object.keys(rest)).toEqual(['step', 'timeToTargetMs', 'samplesToTarget', 'bytesToTarget']);
    expect(Object.values(rest).every((v) => v === null)).toBe(true);
    expect(report.testAccuracy).toBe(0.75);
  });

  it('gives the compression spec, which a method may replace, and staleness only from the method', () => {
    const base = inputs();
    const config = parseRunConfig({ ...fixture.inputs.config, compress: 'int8' });
    const report = buildReport({ ...base, config });
    expect('staleness' in report).toBe(false);
    const staleness = { bound: 2, mean: 1.5, max: 3, perWorker: [] };
    expect(buildReport({ ...base, config, methodFields: { staleness } }).staleness).toEqual(staleness);
    expect(report.compression).toEqual({ spec: 'int8' });
    const measured = { compression: { spec: 'int8', bytesRatio: 0.25 } };
    expect(buildReport({ ...base, config, methodFields: measured }).compression).toEqual(
      measured.compression,
    );
    expect('staleness' in buildReport(base)).toBe(false);
    expect('compression' in buildReport(base)).toBe(false);
  });
});

describe('report workers', () => {
  it("names an elastic pipeline's spare (a stage peer holding no stage) a spare", () => {
    const base = inputs();
    const [a, b] = base.workers;
    const workers = [
      { ...a!, role: 'stage', stage: { stage: 0 } },
      { ...b!, role: 'stage', stage: null },
    ];
    expect(buildReport({ ...base, workers }).workers.map((w) => w.role)).toEqual(['stage', 'spare']);
    expect(buildReport(base).workers.map((w) => w.role)).toEqual(base.workers.map((w) => w.role ?? 'worker'));
  });
});

describe('workersByRank', () => {
  const rec = (peerId: string, bytesSent: number) => ({
    peerId,
    role: 'worker',
    device: null,
    bytesSent,
    framesRefused: 0,
  });

  it('takes each rank as the coordinator knows it now: a readmitted peer new, a joiner last, a lost one as it started', () => {
    const started = [rec('a', 10), rec('b', 20), rec('c', 30)];
    // b was dropped and came back (a new record); c is gone from the list; d joined mid-run.
    const current = new Map([
      ['a', started[0]!],
      ['b', rec('b', 5)],
      ['d', rec('d', 7)],
    ]);
    const workers = workersByRank(['a', 'b', 'c', 'd'], current, started);
    expect(workers.map((w) => [w.peerId, w.bytesSent])).toEqual([
      ['a', 10],
      ['b', 5],
      ['c', 30],
      ['d', 7],
    ]);
    expect(() => workersByRank(['x'], current, started)).toThrow(/no record of worker x/);
  });
});
