import { describe, expect, it } from 'vitest';
import type { StepPoint } from '@peertrain/coordinator';
import { parseRunConfig } from '@peertrain/protocol';
import { SMOOTH_STEPS, chartColumns } from './chartData.ts';

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
