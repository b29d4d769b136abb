import { beforeAll, describe, expect, it } from 'vitest';
import { createOptimizer } from '@peertrain/optim';
import type { ModelSpec, OptimizerConfig } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { createDeviceTrainer, prefersDeviceTraining } from './device-train.ts';
import { ShapeError } from './errors.ts';
import { buildModel } from './model.ts';
import { expectClose, randomArray } from './testing.ts';
import { tf } from './tf.ts';

const spec: ModelSpec = {
  name: 'tiny-cnn',
  inputShape: [7, 7, 2],
  classes: 3,
  layers: [
    { kind: 'conv2d', filters: 3, kernel: 2, stride: 1, padding: 'valid' },
    { kind: 'relu' },
    { kind: 'maxpool', size: 2 },
    { kind: 'flatten' },
    { kind: 'dense', units: 5 },
    { kind: 'tanh' },
    { kind: 'dense', units: 3 },
  ],
};
const B = 4;

const OPTIMIZERS: [string, OptimizerConfig, number][] = [
  ['sgd', { kind: 'sgd', momentum: 0 }, 0.1],
  ['sgd with momentum', { kind: 'sgd', momentum: 0.9 }, 0.05],
  ['adam', { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 0.01],
];

describe('createDeviceTrainer', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });

  it.each(OPTIMIZERS)('%s: 3 steps match lossAndGrads + @peertrain/optim', async (_name, cfg, lr) => {
    const model = buildModel(spec);
    const init = model.initParams(7);
    const host = init.slice();
    const opt = createOptimizer(cfg, lr, model.paramCount);
    const trainer = createDeviceTrainer(model, init, { config: cfg, lr });
    const before = tf.memory().numTensors;
    try {
      for (let step = 0; step < 3; step++) {
        const x = randomArray(B * model.inputSize, 100 + step);
        const y = [0, 1, 2, step % 3];
        const want = await model.lossAndGrads(host, x, y);
        trainer.compute(x, y);
        const grads = new Float32Array(model.paramCount);
        await trainer.readGrads(grads);
        expectClose(grads, want.grads, 1e-5, `grads at step ${step}`);
        expect(await trainer.readLoss()).toBeCloseTo(want.loss, 5);
        opt.step(host, want.grads);
        trainer.apply();
        expect(tf.memory().numTensors, 'tensors after a step').toBe(before);
      }
      const params = new Float32Array(model.paramCount);
      await trainer.readParams(params);
      expectClose(params, host, 1e-5, 'params after 3 steps');
      expect(trainer.steps).toBe(3);
    } finally {
      trainer.dispose();
    }
  });

  it('applies an exchanged mean instead of its own gradients', async () => {
    const model = buildModel(spec);
    const init = model.initParams(3);
    const cfg: OptimizerConfig = { kind: 'sgd', momentum: 0 };
    const trainer = createDeviceTrainer(model, init, { config: cfg, lr: 0.5 });
    try {
      trainer.compute(randomArray(B * model.inputSize, 1), [0, 1, 2, 0]);
      const mean = randomArray(model.paramCount, 2);
      trainer.apply(mean);
      const params = new Float32Array(model.paramCount);
      await trainer.readParams(params);
      expectClose(
        params,
        init.map((p, i) => p - 0.5 * mean[i]!),
        1e-6,
        'p - lr * mean',
      );
      expect(() => trainer.apply()).toThrow(ShapeError); // nothing computed since
      expect(() => trainer.apply(new Float32Array(3))).toThrow(ShapeError);
    } finally {
      trainer.dispose();
    }
  });

  it('releases every tensor on dispose, with a loss read still in flight', async () => {
    const model = buildModel(spec);
    const before = tf.memory().numTensors;
    const trainer = createDeviceTrainer(model, model.initParams(1), {
      config: { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
      lr: 0.01,
    });
    trainer.compute(randomArray(B * model.inputSize, 1), [0, 1, 2, 0]);
    const loss = trainer.readLoss();
    trainer.apply();
    trainer.dispose();
    expect(Number.isFinite(await loss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is chosen for GPU backends only', () => {
    expect(prefersDeviceTraining('webgpu')).toBe(true);
    expect(prefersDeviceTraining('webgl')).toBe(true);
    expect(prefersDeviceTraining('wasm')).toBe(false);
    expect(prefersDeviceTraining('cpu')).toBe(false);
  });
});
