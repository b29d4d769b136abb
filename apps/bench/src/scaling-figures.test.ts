import { describe, expect, it } from 'vitest';
import {
  compressionRatios,
  parseTimeline,
  runFigures,
  scalingChecks,
  withRatios,
} from './scaling-figures.ts';
import type { CompressionRow, ScalingRow } from './scaling-figures.ts';
import { figures, fixtureReport, fixtureTimeline, row } from './scaling.fixture.ts';

describe('parseTimeline', () => {
  it('keeps well-formed steps and evaluations, drops the rest, never throws', () => {
    const t = parseTimeline({
      steps: [{ step: 0, tMs: 5, computeMs: 3, commMs: 2, bytes: 10 }, { step: 1 }, 'x', { step: 2, tMs: 9 }],
      evals: [
        { step: 10, accuracy: 0.9, tMs: 50, loss: 0.3 },
        { step: 20, accuracy: 'high', tMs: 1 },
      ],
    });
    expect(t.steps).toEqual([
      { step: 0, tMs: 5, computeMs: 3, commMs: 2, bytes: 10 },
      { step: 2, tMs: 9, computeMs: 0, commMs: 0, bytes: null },
    ]);
    expect(t.evals).toEqual([{ step: 10, accuracy: 0.9, tMs: 50 }]);
    expect(parseTimeline(null)).toEqual({ steps: [], evals: [] });
  });
});

describe('runFigures', () => {
  it("computes what main's report lacks from the timeline", () => {
    const report = fixtureReport(30);
    const f = runFigures(report, report, fixtureTimeline(30), 0.92, 96);
    // The first evaluation at or above 0.92: after 20 steps, 205 ms after the first step.
    expect(f.target).toEqual({
      reached: true,
      step: 20,
      timeMs: 205,
      samples: 1920,
      bytes: 20_000,
      source: 'timeline',
    });
    expect(f.steps).toBe(30);
    expect(f.computeUtilization).toBeCloseTo(0.6);
    // Bytes from the steps after the first: the report's total and step 0 carry an earlier run's.
    expect(f.bytesPerStep).toBe(1000);
    expect(f.bytesPerSample).toBeCloseTo(1000 / 96);
    expect(f.utilizationByRank).toBeNull();
    expect(f.finalAccuracy).toBe(0.93);
  });

  it('prefers the fields of a newer report', () => {
    const report = fixtureReport(20);
    const raw = {
      ...report,
      target: { reached: true, step: 20, timeToTargetMs: 190, samplesToTarget: 1920, bytesToTarget: 7 },
      computeUtilization: 0.85,
      bytesPerSample: 12.5,
      workers: report.workers.map((w, i) => ({ ...w, computeUtilization: 0.8 + i * 0.1 })),
      staleness: { mean: 1.5, max: 2 },
      compression: { spec: 'int8', bytesRatio: 0.25 },
    };
    const f = runFigures(raw, report, fixtureTimeline(20), 0.92, 96);
    // The timeline's bytes still win over the report's (which count earlier runs of the tabs).
    expect(f.target).toMatchObject({ timeMs: 190, bytes: 20_000, source: 'report' });
    expect(f.computeUtilization).toBe(0.85);
    expect(f.utilizationByRank).toEqual([0.8, 0.9]);
    expect(f.bytesPerSample).toBeCloseTo(1000 / 96);
    // Without per-step bytes, the report's figures.
    const bare = fixtureTimeline(20);
    bare.steps = bare.steps.map((s) => ({ ...s, bytes: null }));
    const g = runFigures(raw, report, bare, 0.92, 96);
    expect(g.target.bytes).toBe(7);
    expect(g.bytesPerSample).toBe(12.5);
    expect(g.bytesPerStep).toBe(report.bytesSent / 20);
    expect(f.staleness).toEqual({ mean: 1.5, max: 2 });
    expect(f.compressionRatio).toBe(0.25);
  });

  it('a target not reached, and a final accuracy the report lacks (early stop on main)', () => {
    const report = fixtureReport(30, { testAccuracy: Number.NaN });
    const t = fixtureTimeline(30);
    const f = runFigures(report, report, t, 0.99, 96);
    expect(f.target).toMatchObject({ reached: false, timeMs: null, step: null });
    expect(f.finalAccuracy).toBe(0.93); // the last evaluation
    expect(runFigures(report, report, t, null, 96).target.reached).toBe(false);
  });
});

describe('withRatios', () => {
  it('divides by the same method on one tab and by one-tab sync all-reduce', () => {
    const rows: ScalingRow[] = [
      row('allreduce', 1, figures(1000, 10_000)),
      row('allreduce', 3, figures(5000, 2_000)),
      row('diloco-20', 1, figures(2000, 10_000)),
      row('diloco-20', 3, figures(1500, 12_000)),
      row('int8', 1, 'UnknownMethodError: no training method'),
      row('int8', 3, figures(4000, 2_500)),
      row('allreduce', 3, figures(null, 2_000), 'cnn'),
    ];
    const out = withRatios(rows);
    const at = (i: number): ScalingRow => out[i]!;
    const r1 = at(1);
    expect(r1.ok && r1.ratios).toEqual({
      timeVsMethod: 5,
      timeVsSync: 5,
      samplesPerSecVsMethod: 0.2,
      samplesPerSecVsSync: 0.2,
    });
    const d3 = at(3);
    expect(d3.ok && d3.ratios).toMatchObject({ timeVsMethod: 0.75, timeVsSync: 1.5 });
    expect(d3.ok && d3.ratios?.samplesPerSecVsSync).toBeCloseTo(1.2);
    // Its own one-tab row failed: only the sync ratios.
    const i3 = at(5);
    expect(i3.ok && i3.ratios).toMatchObject({
      timeVsMethod: null,
      timeVsSync: 4,
      samplesPerSecVsMethod: null,
    });
    // Another model has no one-tab rows; a run that missed its target has no time ratio.
    const c3 = at(6);
    expect(c3.ok && c3.ratios).toEqual({
      timeVsMethod: null,
      timeVsSync: null,
      samplesPerSecVsMethod: null,
      samplesPerSecVsSync: null,
    });
    expect(at(4)).toEqual(rows[4]);
  });
});

function comp(spec: string, bytesPerStep: number, acc: number): CompressionRow {
  return {
    spec,
    tabs: 3,
    steps: 300,
    ok: true,
    bytesPerStep,
    vsNone: null,
    finalAccuracy: acc,
    accuracyDropPoints: null,
    reportedRatio: null,
  };
}

describe('compressionRatios and scalingChecks', () => {
  const compression = compressionRatios([
    comp('none', 1_000_000, 0.944),
    comp('fp16', 500_000, 0.943),
    comp('int8', 300_000, 0.944),
    { spec: 'topk:0.01', tabs: 3, steps: 300, ok: false, error: 'ConfigError: unknown' },
  ]);

  it('gives bytes per step and accuracy against fp32', () => {
    const fp16 = compression[1]!;
    expect(fp16.ok && fp16.vsNone).toBe(0.5);
    expect(fp16.ok && fp16.accuracyDropPoints).toBeCloseTo(0.1);
    const none = compression[0]!;
    expect(none.ok && [none.vsNone, none.accuracyDropPoints]).toEqual([1, 0]);
  });

  it("checks issue 10's bounds", () => {
    const rows = withRatios([
      row('allreduce', 1, figures(1000, 10_000)),
      row('allreduce', 3, figures(5000, 2_000)),
      row('diloco-20', 3, figures(1400, 12_000, { computeUtilization: 0.9 })),
      row('diloco-50', 3, figures(1600, 12_000, { computeUtilization: 0.7 })),
      row('diloco-5', 3, figures(1600, 12_000, { computeUtilization: 0.1 })),
      row('diloco-20-overlap', 3, figures(1500, 12_000, { computeUtilization: 0.85 })),
      row('diloco-20-fill', 2, figures(1500, 12_000, { computeUtilization: 0.9 })),
      row('diloco-20-fill', 3, figures(1500, 12_000, { computeUtilization: 0.79 })),
    ]);
    const checks = scalingChecks(rows, compression);
    expect(checks.map((c) => [c.what.split(':')[0], c.pass])).toEqual([
      ['mlp', true],
      ['diloco H >= 20 (2-4 tabs)', false],
      ['diloco H = 20, outer step overlapped (2-4 tabs)', true],
      ['diloco H = 20, outer step overlapped, waits filled (2-4 tabs)', false],
      ['fp16', true],
      ['int8', false],
      ['topk', false],
    ]);
    expect(checks[0]?.value).toBe('1.40x (diloco-20)');
    expect(checks[1]?.value).toBe('min 0.70 over 2 runs');
    expect(checks[3]?.value).toBe('min 0.79 over 2 runs');
    // Without one tab of sync all-reduce (--scaling-methods) there is no baseline to compare with.
    const some = scalingChecks(
      rows.filter((r) => r.method !== 'allreduce'),
      [],
    );
    expect(some.map((c) => c.what.split(':')[0])).not.toContain('mlp');
  });
});
