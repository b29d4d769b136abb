import { describe, expect, it } from 'vitest';
import type { StepPoint } from '@peertrain/coordinator';
import { parseRunConfig } from '@peertrain/protocol';
import {
  ChartAccumulator,
  MAX_CHART_POINTS,
  SMOOTH_STEPS,
  chartColumns,
  tickLabels,
  xRangeOf,
} from './chartData.ts';

const config = parseRunConfig({ workers: 2, batch: 16 }); // data parallel: 32 samples per step

const point = (step: number, o: Partial<StepPoint> = {}): StepPoint => ({
  step,
  loss: 1 / (step + 1),
  tMs: (step + 1) * 100,
  samplesPerSec: 320,
  computeMs: 50,
  commMs: 10,
  stepMs: 100,
  bytes: 1000 + step,
  computeMsByRank: [50, 25],
  ...o,
});

describe('chartColumns', () => {
  it('turns steps into columns: time in seconds, bytes, samples/s and utilization per rank', () => {
    const c = chartColumns({ config, steps: [0, 1, 2].map((s) => point(s)), evals: [] });
    expect(c.step).toEqual([0, 1, 2]);
    expect(c.timeS).toEqual([0.1, 0.2, 0.3]);
    expect(c.bytes).toEqual([1000, 1001, 1002]);
    // 32 samples per 100 ms step.
    expect(c.samplesPerSec).toEqual([320, 320, 320]);
    expect(c.utilization).toEqual([
      [0.5, 0.5, 0.5],
      [0.25, 0.25, 0.25],
    ]);
  });

  it('smooths over the last SMOOTH_STEPS steps and clamps utilization to 1', () => {
    const steps = Array.from({ length: SMOOTH_STEPS + 3 }, (_, i) =>
      // A slow step at SMOOTH_STEPS: it leaves the window after SMOOTH_STEPS more steps.
      point(i, i === 2 ? { stepMs: 600, computeMsByRank: [900, 0] } : {}),
    );
    const c = chartColumns({ config, steps, evals: [] });
    const w = (ms: number) => (32 * SMOOTH_STEPS) / (ms / 1000);
    expect(c.samplesPerSec[SMOOTH_STEPS - 1]).toBeCloseTo(w(100 * (SMOOTH_STEPS - 1) + 600));
    expect(c.samplesPerSec[SMOOTH_STEPS + 2]).toBeCloseTo(w(100 * SMOOTH_STEPS));
    expect(c.utilization[0]![2]).toBe(1); // 1150 ms of compute in 800 ms of wall: clamped
    expect(c.utilization[0]![SMOOTH_STEPS + 2]).toBeCloseTo(0.5);
  });

  it('leaves gaps for points without the new fields, NaN losses, and no config', () => {
    const old: StepPoint = { step: 0, loss: NaN, tMs: 10, samplesPerSec: 5, computeMs: 1, commMs: 1 };
    const c = chartColumns({
      config: null,
      steps: [old],
      evals: [{ step: 5, accuracy: 0.8, loss: 1, tMs: 2500 }],
    });
    expect(c.loss).toEqual([null]);
    expect(c.bytes).toEqual([null]);
    expect(c.samplesPerSec).toEqual([null]);
    expect(c.utilization).toEqual([]);
    expect(c.evalStep).toEqual([5]);
    expect(c.evalTimeS).toEqual([2.5]);
    expect(c.accuracy).toEqual([0.8]);
  });
});

describe('ChartAccumulator', () => {
  /** The coordinator's way: a new array per step, the old points kept. */
  function grow(n: number, from: StepPoint[] = []): StepPoint[][] {
    const arrays: StepPoint[][] = [];
    let steps = from;
    for (let i = from.length; i < n; i++) {
      steps = [
        ...steps,
        point(i, { loss: Math.sin(i), stepMs: 90 + (i % 7) * 5, computeMsByRank: [i % 50, 20] }),
      ];
      arrays.push(steps);
    }
    return arrays;
  }

  it('fed step by step, gives what the whole run gives at once (below the cap: a point a step)', () => {
    const acc = new ChartAccumulator();
    const arrays = grow(300);
    let c = acc.update({ config, steps: [], evals: [] });
    for (const steps of arrays) c = acc.update({ config, steps, evals: [] });
    expect(c).toEqual(chartColumns({ config, steps: arrays.at(-1)!, evals: [] }));
    expect(c.stepsPerPoint).toBe(1);
    expect(c.steps).toBe(300);
    // The same config as a new object (a rebuilt view) does not start over; another batch does.
    const more = grow(301, arrays.at(-1)).at(-1)!;
    const guarded = [...more];
    Object.defineProperty(guarded, 1, {
      get: () => {
        throw new Error('read again');
      },
    });
    expect(acc.update({ config: { ...config }, steps: guarded, evals: [] }).steps).toBe(301);
    const bigger = parseRunConfig({ workers: 2, batch: 32 });
    expect(acc.update({ config: bigger, steps: more, evals: [] })).toEqual(
      chartColumns({ config: bigger, steps: more, evals: [] }),
    );
  });

  it('reads only the steps added since the last update', () => {
    const acc = new ChartAccumulator();
    const [a, b] = grow(2 * MAX_CHART_POINTS).slice(-2);
    acc.update({ config, steps: a!, evals: [] });
    // Every step the accumulator has read already throws when touched, but the first and the last.
    const guarded = [...b!];
    for (let i = 1; i < a!.length - 1; i++) {
      Object.defineProperty(guarded, i, {
        get: () => {
          throw new Error(`step ${i} read again`);
        },
      });
    }
    expect(acc.update({ config, steps: guarded, evals: [] }).steps).toBe(b!.length);
  });

  it('past the cap, merges neighbouring steps into their means, keeping every step counted once', () => {
    const cap = 8;
    const acc = new ChartAccumulator(cap);
    const arrays = grow(21);
    let c = acc.update({ config, steps: [], evals: [] });
    for (const steps of arrays) c = acc.update({ config, steps, evals: [] });
    // 21 steps, at most 8 points: 4 steps a point (5 full points and one of a single step).
    expect(c.stepsPerPoint).toBe(4);
    expect(c.step).toEqual([1.5, 5.5, 9.5, 13.5, 17.5, 20]);
    const full = chartColumns({ config, steps: arrays.at(-1)!, evals: [] });
    const meanOf = (ys: readonly (number | null)[], from: number, to: number): number =>
      ys.slice(from, to).reduce<number>((a, y) => a + (y ?? 0), 0) / (to - from);
    c.loss.forEach((y, i) => expect(y).toBeCloseTo(meanOf(full.loss, 4 * i, Math.min(21, 4 * i + 4)), 12));
    c.utilization[0]!.forEach((y, i) =>
      expect(y).toBeCloseTo(meanOf(full.utilization[0]!, 4 * i, Math.min(21, 4 * i + 4)), 12),
    );
    expect(c.timeS).toHaveLength(6);
    expect(c.steps).toBe(21);
    // Each point's band: the lowest and highest loss of its steps.
    const span = (i: number): number[] => full.loss.slice(4 * i, Math.min(21, 4 * i + 4)) as number[];
    expect(c.lossMin).toEqual(c.loss.map((_, i) => Math.min(...span(i))));
    expect(c.lossMax).toEqual(c.loss.map((_, i) => Math.max(...span(i))));
  });

  it('keeps a one-step loss spike as the band of the point that merged it', () => {
    const acc = new ChartAccumulator(64);
    const steps = Array.from({ length: 5_000 }, (_, i) => point(i, { loss: i === 3_210 ? 40 : 0.5 }));
    const c = acc.update({ config, steps, evals: [] });
    const at = Math.floor(3_210 / c.stepsPerPoint);
    expect(c.stepsPerPoint).toBe(128);
    expect(c.loss[at]).toBeCloseTo(0.5 + 39.5 / 128, 12); // the mean hides it...
    expect(c.lossMax[at]).toBe(40); // ...the band does not
    expect(c.lossMax.filter((y) => y !== 0.5)).toEqual([40]);
    expect(c.lossMin.every((y) => y === 0.5)).toBe(true);
    // A point a step: the band is the line itself; a step without a loss leaves a gap in all three.
    const one = chartColumns({ config, steps: [point(0), point(1, { loss: NaN })], evals: [] });
    expect([one.lossMin, one.lossMax]).toEqual([
      [1, null],
      [1, null],
    ]);
  });

  it('holds at most MAX_CHART_POINTS points over a long run', () => {
    const acc = new ChartAccumulator();
    let steps: StepPoint[] = [];
    let c = acc.update({ config, steps, evals: [] });
    for (let i = 0; i < 5_000; i++) {
      steps = steps.concat(point(i));
      if (i % 97 === 0 || i === 4_999) c = acc.update({ config, steps, evals: [] });
    }
    expect(c.step.length).toBeLessThanOrEqual(MAX_CHART_POINTS);
    expect(c.step.length).toBeGreaterThan(MAX_CHART_POINTS / 2);
    expect(c.stepsPerPoint * c.step.length).toBeGreaterThanOrEqual(5_000);
    expect(c.steps).toBe(5_000);
  });

  it('starts over for a new run, and returns the same columns while nothing changed', () => {
    const acc = new ChartAccumulator();
    const first = grow(10).at(-1)!;
    const none: [] = [];
    const c1 = acc.update({ config, steps: first, evals: none });
    expect(acc.update({ config, steps: first, evals: none })).toBe(c1);
    const evals = [{ step: 5, accuracy: 0.5, loss: 1, tMs: 600 }];
    expect(acc.update({ config, steps: first, evals }).accuracy).toEqual([0.5]);
    // Another run: its own steps, not appended to the last run's.
    const other = [point(0, { loss: 9 }), point(1, { loss: 8 })];
    const c2 = acc.update({ config, steps: other, evals: [] });
    expect(c2.loss).toEqual([9, 8]);
    expect(c2.steps).toBe(2);
  });
});

describe('xRangeOf', () => {
  it('keeps a span, and puts one point at the right end of 0..x', () => {
    expect(xRangeOf(50, 300)).toEqual([50, 300]);
    expect(xRangeOf(200, 200)).toEqual([0, 200]);
    expect(xRangeOf(0, 0)).toEqual([-1, 1]);
    expect(xRangeOf(null, null)).toEqual([0, 1]);
  });
});

describe('tickLabels', () => {
  it('blanks a label that repeats the one before it, and keeps the rest', () => {
    expect(tickLabels(['0 B', '0 B', '0 B', '1 B', '1 B', '1 B'])).toEqual(['0 B', '', '', '1 B', '', '']);
    expect(tickLabels(['0%', '20%', '40%'])).toEqual(['0%', '20%', '40%']);
  });
});
