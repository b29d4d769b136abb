import { afterAll, describe, expect, it } from 'vitest';
import { modelPreset } from '@peertrain/protocol';
import type { BackendProbe } from '@peertrain/protocol';
import { activateBackend, selectBackend } from './backends.ts';
import {
  DEFAULT_LIMITS,
  DEFAULT_WORKLOAD,
  describeWorkload,
  isStable,
  median,
  summarizeTimings,
  timeWorkload,
  wantsMoreSamples,
  workloadFlops,
  workloadFor,
} from './probe.ts';
import type { ProbeLimits } from './probe.ts';
import { tf } from './tf.ts';

const LIMITS: ProbeLimits = { budgetMs: 100, minSamples: 3, maxSamples: 6, tolerance: 0.1 };

describe('probe timing rules', () => {
  it('counts three matmuls per layer', () => {
    expect(workloadFlops({ batch: 2, layers: [3, 4, 5] })).toBe(3 * 2 * 2 * (3 * 4 + 4 * 5));
    expect(workloadFlops(DEFAULT_WORKLOAD)).toBeCloseTo(103e6, -6);
    expect(describeWorkload({ batch: 8, layers: [784, 10] })).toBe('fwd+bwd 784-10 @8');
  });

  it('workloadFor: a dense model at the run batch; nothing for a CNN', () => {
    expect(workloadFor(modelPreset('mlp'), 32)).toEqual({ batch: 32, layers: [784, 128, 10] });
    expect(workloadFor(modelPreset('wideMlp'), 512)?.layers).toEqual([784, 1024, 1024, 1024, 1024, 10]);
    expect(workloadFor(modelPreset('cnn'), 96)).toBeUndefined();
  });

  it('median of odd and even counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('stable once the last minSamples agree within tolerance', () => {
    expect(isStable([10, 10], LIMITS)).toBe(false); // too few
    expect(isStable([50, 10, 10.5, 10.2], LIMITS)).toBe(true); // an early outlier no longer counts
    expect(isStable([10, 10, 12], LIMITS)).toBe(false); // 20% spread
  });

  it('times again until stable, over budget or at maxSamples; always at least once', () => {
    expect(wantsMoreSamples([], LIMITS)).toBe(true);
    expect(wantsMoreSamples([500], LIMITS)).toBe(false); // one pass over the budget is enough
    expect(wantsMoreSamples([10, 14], LIMITS)).toBe(true);
    expect(wantsMoreSamples([10, 14, 10, 10.1, 10.2], LIMITS)).toBe(false); // stable
    expect(wantsMoreSamples([1, 2, 1, 2, 1, 2], LIMITS)).toBe(false); // maxSamples
    expect(wantsMoreSamples([1, 2, 1, 2], LIMITS)).toBe(true);
  });

  it('the figure is the median pass, never the warm-up (kernel compilation)', () => {
    const t = summarizeTimings(900, [2, 2.2, 2.1, 40], 2e6, LIMITS);
    expect(t.stepMs).toBeCloseTo(2.15);
    expect(t.gflops).toBeCloseTo(2e6 / 2.15e6);
    expect(t.warmupMs).toBe(900);
    expect(t.samples).toBe(4);
  });
});

describe('selection from timings', () => {
  const probe = (backend: BackendProbe['backend'], warmupMs: number, samples: number[]): BackendProbe => {
    const t = summarizeTimings(warmupMs, samples, workloadFlops(DEFAULT_WORKLOAD), DEFAULT_LIMITS);
    return { backend, ok: true, gflops: t.gflops, stepMs: t.stepMs, warmupMs };
  };

  it('a real GPU: a slow first pass (compilation) does not lose it the choice', () => {
    const probes = [
      probe('webgpu', 1800, [1.1, 0.9, 1.0, 1.0, 1.0]),
      probe('webgl', 900, [3, 3.1, 2.9]),
      probe('wasm', 9, [8, 8.2, 7.9, 8.1, 8]),
      probe('cpu', 90, [95, 96]),
    ];
    expect(selectBackend('auto', probes)).toBe('webgpu');
  });

  it('SwiftShader: webgpu emulated on the CPU loses to wasm', () => {
    const probes = [
      probe('webgpu', 700, [290]),
      probe('webgl', 200, [105, 99, 100]),
      probe('wasm', 35, [31, 32, 31, 30, 31]),
      probe('cpu', 96, [96, 97, 95]),
    ];
    expect(selectBackend('auto', probes)).toBe('wasm');
  });
});

describe('timeWorkload on cpu', () => {
  afterAll(async () => {
    await activateBackend('cpu');
  });

  it('returns positive figures, leaks nothing and honours an aborted signal', async () => {
    await activateBackend('cpu');
    const before = tf.memory().numTensors;
    const w = { batch: 4, layers: [16, 8, 3] };
    const t = await timeWorkload(w, { limits: LIMITS });
    expect(t.stepMs).toBeGreaterThan(0);
    expect(t.gflops).toBeGreaterThan(0);
    expect(t.samples).toBeGreaterThanOrEqual(1);
    expect(tf.memory().numTensors).toBe(before);
    await expect(timeWorkload(w, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
