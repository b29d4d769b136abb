import { describe, expect, it } from 'vitest';
import { ConfigError, parsePartition } from '@peertrain/protocol';
import type { LayerProfile, StageDevice, StageRange } from './stages.ts';
import { PlanError, evaluatePartition, planStages } from './stages.ts';

const BIG = 1e12;
const layer = (costMs: number, paramBytes = 0, activationBytes = 0): LayerProfile => ({
  costMs,
  paramBytes,
  activationBytes,
});
const dev = (id: string, gflops = 10, memoryBytes = BIG): StageDevice => ({ id, gflops, memoryBytes });
const ranges = (plan: { stages: readonly StageRange[] }): [number, number][] =>
  plan.stages.map((s) => [s.first, s.end]);

describe('planStages', () => {
  it('hand-checked: costs 1,2,3,4 on two equal devices cut after layer 2', () => {
    // Cuts: [1 | 2 3 4] -> 9, [1 2 | 3 4] -> 7, [1 2 3 | 4] -> 6 (best).
    const plan = planStages([layer(1), layer(2), layer(3), layer(4)], [dev('a'), dev('b')]);
    expect(ranges(plan)).toEqual([
      [0, 3],
      [3, 4],
    ]);
    expect(plan.stages.map((s) => s.device)).toEqual(['a', 'b']);
    expect(plan.stages.map((s) => s.predictedMs)).toEqual([6, 4]);
    expect(plan.bottleneckMs).toBe(6);
    expect(plan.predictedStepMs).toBe((2 + 2 - 1) * 6); // M defaults to P = 2
  });

  it('equal devices on equal layers get equal stages', () => {
    const layers = Array.from({ length: 12 }, () => layer(2));
    for (const P of [1, 2, 3, 4, 6, 12]) {
      const devices = Array.from({ length: P }, (_, i) => dev(`d${i}`));
      const plan = planStages(layers, devices, { microBatches: 8 });
      expect(plan.stages.map((s) => s.end - s.first)).toEqual(Array<number>(P).fill(12 / P));
      expect(plan.bottleneckMs).toBe((12 / P) * 2);
      expect(plan.predictedStepMs).toBe((8 + P - 1) * plan.bottleneckMs);
    }
  });

  it('a 2x faster device gets twice the layers', () => {
    const layers = Array.from({ length: 12 }, () => layer(1));
    const plan = planStages(layers, [dev('fast', 20), dev('slow', 10)]);
    // Reference = fastest: fast takes k ms, slow 2(12 - k) ms; k = 8 balances them.
    expect(ranges(plan)).toEqual([
      [0, 8],
      [8, 12],
    ]);
    expect(plan.stages.map((s) => s.predictedMs)).toEqual([8, 8]);
    // Order is the pipeline order given, not speed order.
    const flipped = planStages(layers, [dev('slow', 10), dev('fast', 20)]);
    expect(ranges(flipped)).toEqual([
      [0, 4],
      [4, 12],
    ]);
  });

  it('scales predicted times by referenceGflops / gflops', () => {
    const plan = planStages([layer(3), layer(3)], [dev('a', 10), dev('b', 10)], { referenceGflops: 5 });
    expect(plan.stages.map((s) => s.predictedMs)).toEqual([1.5, 1.5]);
  });

  it('counts params x 3 and activations x min(P, M) against memory', () => {
    const layers = Array.from({ length: 4 }, () => layer(1, 100, 10));
    const devices = [dev('a'), dev('b')];
    expect(planStages(layers, devices, { microBatches: 8 }).stages[0]?.memoryBytes).toBe(2 * (300 + 2 * 10));
    expect(planStages(layers, devices, { microBatches: 1 }).stages[0]?.memoryBytes).toBe(2 * (300 + 1 * 10));
  });

  it('a memory limit forces a different split', () => {
    // Each layer needs 300 + 2 x 10 = 320 bytes; 'a' holds only one of them.
    const layers = Array.from({ length: 4 }, () => layer(1, 100, 10));
    expect(ranges(planStages(layers, [dev('a'), dev('b')], { microBatches: 4 }))).toEqual([
      [0, 2],
      [2, 4],
    ]);
    const plan = planStages(layers, [dev('a', 10, 400), dev('b')], { microBatches: 4 });
    expect(ranges(plan)).toEqual([
      [0, 1],
      [1, 4],
    ]);
    expect(plan.bottleneckMs).toBe(3);
    expect(plan.stages[0]?.memoryBytes).toBe(320);
  });

  it('no feasible plan throws PlanError naming the device and layers', () => {
    const layers = Array.from({ length: 4 }, () => layer(1, 100, 10));
    const err = (() => {
      try {
        planStages(layers, [dev('a', 10, 400), dev('b', 10, 400)], { microBatches: 4 });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(PlanError);
    const planErr = err as PlanError;
    expect(planErr.name).toBe('PlanError');
    expect(planErr.detail).toEqual({ device: 'b', first: 1, end: 4, needBytes: 960, haveBytes: 400 });
    expect(planErr.message).toMatch(/device b cannot hold layers \[1, 4\)/);
    // A first device too small for even one layer is named as such.
    expect(() => planStages(layers, [dev('a', 10, 100), dev('b')])).toThrow(
      /device a cannot hold layers \[0, 1\)/,
    );
    // More devices than layers.
    expect(() => planStages([layer(1)], [dev('a'), dev('b')])).toThrow(PlanError);
  });

  it('refuses malformed input with a ConfigError', () => {
    expect(() => planStages([layer(1)], [])).toThrow(ConfigError);
    expect(() => planStages([layer(-1)], [dev('a')])).toThrow(ConfigError);
    expect(() => planStages([layer(1)], [dev('a', 0)])).toThrow(ConfigError);
    expect(() => planStages([layer(1), layer(1)], [dev('a'), dev('a')])).toThrow(/appears twice/);
    expect(() => planStages([layer(1)], [dev('a')], { microBatches: 0 })).toThrow(ConfigError);
  });

  it('equals brute force on random small cases', () => {
    // Reproducible cases: a 32-bit LCG, high bits only (its low bits cycle short).
    let state = 0x5eed;
    const int = (lo: number, hi: number): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return lo + ((state >>> 16) % (hi - lo + 1));
    };
    let infeasible = 0;
    for (let trial = 0; trial < 400; trial++) {
      const n = int(1, 8);
      const P = int(1, Math.min(n, 4));
      const M = int(1, 6);
      const layers = Array.from({ length: n }, () => layer(int(1, 20) / int(1, 4), int(0, 50), int(0, 20)));
      const devices = Array.from({ length: P }, (_, i) => dev(`d${i}`, int(1, 8) * 2.5, int(60, 600)));
      const best = bruteForce(layers, devices, M);
      if (best === null) {
        infeasible++;
        expect(() => planStages(layers, devices, { microBatches: M })).toThrow(PlanError);
        continue;
      }
      const plan = planStages(layers, devices, { microBatches: M });
      expect(plan.bottleneckMs).toBeCloseTo(best, 9);
      // The plan is a valid partition that fits, and its figures agree with an independent check.
      const again = evaluatePartition(layers, devices, plan.stages, { microBatches: M });
      expect(again.bottleneckMs).toBeCloseTo(plan.bottleneckMs, 9);
    }
    // Both branches exercised.
    expect(infeasible).toBeGreaterThan(20);
    expect(infeasible).toBeLessThan(380);
  });
});

describe('evaluatePartition', () => {
  it('predicts a given split and refuses one that does not fit', () => {
    const layers = Array.from({ length: 4 }, () => layer(1, 100, 10));
    const devices = [dev('a', 10, 400), dev('b')];
    const plan = evaluatePartition(layers, devices, parsePartition('0,1-3', 4, 2), { microBatches: 4 });
    expect(plan.stages.map((s) => s.predictedMs)).toEqual([1, 3]);
    expect(() => evaluatePartition(layers, devices, parsePartition('0-1,2-3', 4, 2))).toThrow(PlanError);
    expect(() =>
      evaluatePartition(layers, devices, [
        { first: 0, end: 2 },
        { first: 3, end: 4 },
      ]),
    ).toThrow(ConfigError);
  });
});

/** Least bottleneck over every composition of n layers into P non-empty parts that fit; null if none. */
function bruteForce(
  layers: readonly LayerProfile[],
  devices: readonly StageDevice[],
  M: number,
): number | null {
  const P = devices.length;
  const reference = Math.max(...devices.map((d) => d.gflops));
  let best: number | null = null;
  const walk = (stage: number, first: number, worst: number): void => {
    const device = devices[stage];
    if (device === undefined) {
      if (first === layers.length && (best === null || worst < best)) best = worst;
      return;
    }
    const lastEnd = stage === P - 1 ? layers.length : layers.length - (P - 1 - stage);
    for (let end = stage === P - 1 ? layers.length : first + 1; end <= lastEnd; end++) {
      let ms = 0;
      let bytes = 0;
      for (const l of layers.slice(first, end)) {
        ms += l.costMs;
        bytes += 3 * l.paramBytes + Math.min(P, M) * l.activationBytes;
      }
      if (end > first && bytes <= device.memoryBytes)
        walk(stage + 1, end, Math.max(worst, (ms * reference) / device.gflops));
    }
  };
  walk(0, 0, 0);
  return best;
}

describe('planStages with communication', () => {
  it('moves a cut to where activations are small when links are slow', () => {
    // Four equal layers; the output after layer 1 is huge, after layer 2 tiny.
    const layers = [
      { costMs: 10, paramBytes: 0, activationBytes: 0, outputBytes: 1000 },
      { costMs: 10, paramBytes: 0, activationBytes: 0, outputBytes: 1_000_000 },
      { costMs: 10, paramBytes: 0, activationBytes: 0, outputBytes: 10 },
      { costMs: 10, paramBytes: 0, activationBytes: 0, outputBytes: 10 },
    ];
    const devices = [
      { id: 'a', gflops: 1, memoryBytes: 1e9 },
      { id: 'b', gflops: 1, memoryBytes: 1e9 },
    ];
    const free = planStages(layers, devices);
    expect(free.stages.map((s) => s.end)).toEqual([2, 4]);
    const slow = planStages(layers, devices, { bytesPerMs: 10_000 });
    expect(slow.stages.map((s) => s.end)).toEqual([3, 4]);
    // the boundary's bytes cross twice (activation forward, gradient backward)
    expect(slow.stages[0]!.predictedMs).toBeCloseTo(30 + (2 * 10) / 10_000, 10);
  });

  it('among cuts with the least bottleneck, takes the one whose stages sum least (fewest bytes here)', () => {
    // The MNIST CNN at 16 rows a micro-batch: conv, relu, pool, conv (the bottleneck), relu, pool,
    // flatten, dense; outputBytes per layer. Cutting after the second relu (200 kB) or after its
    // pool (50 kB) predicts the same bottleneck; the pool moves a quarter of the bytes.
    const kB = 1024;
    const cnn: [number, number][] = [
      [8, 392 * kB],
      [5, 392 * kB],
      [10, 98 * kB],
      [30, 196 * kB],
      [5, 196 * kB],
      [12, 49 * kB],
      [0.1, 49 * kB],
      [2, 640],
    ];
    const layers = cnn.map(([costMs, outputBytes]) => ({
      costMs,
      paramBytes: 0,
      activationBytes: 0,
      outputBytes,
    }));
    const devices = ['a', 'b', 'c', 'd'].map((id) => ({ id, gflops: 1, memoryBytes: 1e9 }));
    const plan = planStages(layers, devices, { microBatches: 8, bytesPerMs: 20_000 });
    const ends = plan.stages.map((s) => s.end);
    expect(ends.slice(0, 2)).toEqual([3, 4]); // the bottleneck conv alone
    expect([6, 7]).toContain(ends[2]); // after the pool (or the flatten: the same bytes), not the relu
    // The same bottleneck as any cut the bottleneck alone allows, e.g. after the relu.
    const afterRelu = evaluatePartition(layers, devices, parsePartition('0-2,3-3,4-4,5-7', 8, 4), {
      microBatches: 8,
      bytesPerMs: 20_000,
    });
    expect(plan.bottleneckMs).toBeCloseTo(afterRelu.bottleneckMs, 9);
    const sum = (q: typeof plan): number => q.stages.reduce((a, st) => a + st.predictedMs, 0);
    expect(sum(plan)).toBeLessThan(sum(afterRelu));
  });
});
