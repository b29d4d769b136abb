import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '@peertrain/engine';
import type { RunConfigInput } from '@peertrain/protocol';
import { memoryCluster } from './test-cluster.ts';

// The all-reduce method with the replica on the device (TrainSession.deviceSteps, what webgpu and
// webgl get), forced on the CPU backend so Node runs it: the same numbers as the reference, the
// parameters read back only for evaluations, the final model and the reference.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  sync: 'allreduce',
  steps: 6,
  batch: 8,
  lr: 0.05,
  seed: 11,
  evalEvery: 3,
  reference: true,
  bucketElems: 10_000,
};

describe('allreduce with deviceSteps', () => {
  for (const n of [1, 2]) {
    it(`${n} worker(s) equal the single worker at batch ${n}x8`, async () => {
      const { coord } = memoryCluster(n, `device-${n}`, cleanups, { deviceSteps: true });
      const report = await coord.run({ ...base, workers: n }, { waitMs: 30_000 });
      expect(report.loss).toHaveLength(6);
      expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
      expect(Math.abs(report.reference!.referenceLoss - report.finalLoss)).toBeLessThan(1e-4);
      expect(report.evals.map((e) => e.step)).toEqual([3, 6]);
      expect(report.errors).toEqual([]);
    });
  }

  it('with adam and int8 compression trains and keeps tf.memory().numTensors flat', async () => {
    const { coord } = memoryCluster(2, 'device-adam', cleanups, { deviceSteps: true });
    const adam: RunConfigInput = {
      ...base,
      workers: 2,
      steps: 3,
      reference: false,
      optimizer: { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
      lr: 0.01,
      compress: 'int8',
    };
    await coord.run(adam);
    const before = tf.memory().numTensors;
    const report = await coord.run({ ...adam, steps: 6, evalEvery: 3 });
    expect(report.errors).toEqual([]);
    expect(report.finalLoss).toBeLessThan(report.loss[0]!.loss);
    expect(tf.memory().numTensors).toBe(before);
  });
});
