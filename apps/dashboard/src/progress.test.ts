import { describe, expect, it } from 'vitest';
import type { RunView, StepPoint } from '@peertrain/coordinator';
import { RATE_WINDOW, runProgress } from './progress.ts';

function point(step: number, tMs: number, samplesPerSec = 640): StepPoint {
  return { step, loss: 2 / (step + 1), tMs, samplesPerSec, computeMs: 10, commMs: 5 };
}

function run(partial: Partial<RunView>): RunView {
  return {
    runId: 1,
    phase: 'running',
    config: null,
    step: 0,
    totalSteps: 100,
    steps: [],
    evals: [],
    error: null,
    startedAt: 0,
    spans: [],
    pipeline: null,
    ...partial,
  };
}

describe('runProgress', () => {
  it('is unknown before two steps', () => {
    const p = runProgress(run({ step: 1, steps: [point(0, 50)] }));
    expect(p).toMatchObject({ step: 1, fraction: 0.01, samplesPerSec: null, etaMs: null, lastLoss: 2 });
  });

  it('uses the recent window for step time and ETA', () => {
    // 50 ms per step early, 100 ms per step over the last RATE_WINDOW steps.
    const steps: StepPoint[] = [];
    let t = 0;
    for (let s = 0; s < 60; s++) {
      t += s < 60 - RATE_WINDOW ? 50 : 100;
      steps.push(point(s, t, s < 60 - RATE_WINDOW ? 1280 : 640));
    }
    const p = runProgress(run({ step: 60, steps }));
    expect(p.stepMs).toBeCloseTo(100, 6);
    expect(p.etaMs).toBeCloseTo(40 * 100, 6);
    expect(p.samplesPerSec).toBeCloseTo(640, 6);
    expect(p.fraction).toBeCloseTo(0.6);
  });

  it('clamps and finishes at zero ETA', () => {
    const p = runProgress(run({ step: 120, steps: [point(98, 0), point(99, 10)] }));
    expect(p.step).toBe(100);
    expect(p.fraction).toBe(1);
    expect(p.etaMs).toBe(0);
    expect(runProgress(run({ totalSteps: 0 })).fraction).toBe(0);
  });
});
