import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import type { ModelSpec } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { ShapeError } from './errors.ts';
import { buildModel, disposeSaved, readTensorsInto } from './model.ts';
import type { Model } from './model.ts';
import { modelPreset } from '@peertrain/protocol';
import { expectClose, randomArray } from './testing.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

// Small versions of the presets, so the tests are fast on 2 cores.
const smallMlp: ModelSpec = {
  name: 'small-mlp',
  inputShape: [12],
  classes: 4,
  layers: [
    { kind: 'dense', units: 8 },
    { kind: 'tanh' },
    { kind: 'dense', units: 6 },
    { kind: 'relu' },
    { kind: 'dense', units: 4 },
  ],
};
const smallCnn: ModelSpec = {
  name: 'small-cnn',
  inputShape: [8, 8, 1],
  classes: 3,
  layers: [
    { kind: 'conv2d', filters: 3, kernel: 3, stride: 1, padding: 'same' },
    { kind: 'relu' },
    { kind: 'maxpool', size: 2 },
    { kind: 'conv2d', filters: 4, kernel: 3, stride: 1, padding: 'valid' },
    { kind: 'tanh' },
    { kind: 'flatten' },
    { kind: 'dense', units: 3 },
  ],
};

/** The same network written directly with tfjs ops, for autodiff. x flat [B, inputSize]. */
function referenceLogits(model: Model, x: Tensor, w: Tensor[]): Tensor {
  let h = tf.reshape(x, [x.shape[0], ...model.inputShape]);
  let k = 0;
  for (const l of model.layers) {
    const s = l.spec;
    switch (s.kind) {
      case 'dense':
        h = tf.add(tf.matMul(h, w[k++]!), w[k++]!);
        break;
      case 'conv2d':
        h = tf.add(tf.conv2d(h as tf.Tensor4D, w[k++] as tf.Tensor4D, s.stride, s.padding), w[k++]!);
        break;
      case 'maxpool':
        h = tf.maxPool(h as tf.Tensor4D, s.size, s.stride ?? s.size, 'valid');
        break;
      case 'flatten':
        h = tf.reshape(h, [h.shape[0], -1]);
        break;
      case 'relu':
        h = tf.relu(h);
        break;
      case 'tanh':
        h = tf.tanh(h);
        break;
    }
  }
  return h;
}

async function autodiff(model: Model, params: Float32Array, x: Float32Array, labels: number[]) {
  const out = tf.tidy(() => {
    const w = model.params.map((p) =>
      tf.tensor(params.subarray(p.offset, p.offset + p.size), p.shape as number[]),
    );
    const xt = tf.tensor2d(x, [labels.length, model.inputSize]);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), model.classes);
    const lossFn = (...ws: Tensor[]): Tensor =>
      tf.losses.softmaxCrossEntropy(onehot, referenceLogits(model, xt, ws));
    const { value, grads } = tf.valueAndGrads(lossFn)(w);
    return { value, grads };
  });
  const grads = new Float32Array(model.paramCount);
  await readTensorsInto(out.grads, grads);
  const loss = (await out.value.data())[0]!;
  tf.dispose(out);
  return { loss, grads };
}

function batch(model: Model, n: number, seed: number): { x: Float32Array; labels: number[] } {
  const x = randomArray(n * model.inputSize, seed);
  const labels = Array.from({ length: n }, (_, i) => (i * 7 + seed) % model.classes);
  return { x, labels };
}

describe('shape inference and parameters', () => {
  it('infers the cnn preset shapes and parameter layout', () => {
    const m = buildModel(modelPreset('cnn'));
    expect(m.layers.map((l) => l.outputShape)).toEqual([
      [28, 28, 8],
      [28, 28, 8],
      [14, 14, 8],
      [14, 14, 16],
      [14, 14, 16],
      [7, 7, 16],
      [784],
      [10],
    ]);
    expect(m.layers.length).toBeGreaterThanOrEqual(6);
    expect(m.paramCount).toBe(80 + 1168 + 7850);
    expect(m.params.map((p) => p.shape)).toEqual([[3, 3, 1, 8], [8], [3, 3, 8, 16], [16], [784, 10], [10]]);
    // offsets are contiguous in layer order
    let at = 0;
    for (const p of m.params) {
      expect(p.offset).toBe(at);
      at += p.size;
    }
  });

  it('mlp and deepMlp presets', () => {
    expect(buildModel(modelPreset('mlp')).paramCount).toBe(784 * 128 + 128 + 128 * 10 + 10);
    const deep = buildModel(modelPreset('deepMlp'));
    expect(deep.layers.length).toBe(9);
    expect(deep.layers.at(-1)!.outputShape).toEqual([10]);
  });

  it('refuses invalid models with ConfigError', () => {
    const bad =
      (layers: ModelSpec['layers'], inputShape = [4, 4, 1], classes = 2): (() => Model) =>
      () =>
        buildModel({ name: 'bad', inputShape, classes, layers });
    expect(bad([{ kind: 'dense', units: 2 }])).toThrow(/flatten/);
    expect(bad([{ kind: 'flatten' }, { kind: 'dense', units: 3 }])).toThrow(ConfigError);
    expect(bad([{ kind: 'maxpool', size: 5 }, { kind: 'flatten' }, { kind: 'dense', units: 2 }])).toThrow(
      ConfigError,
    );
    expect(bad([{ kind: 'dense', units: 0 }], [3])).toThrow(ConfigError);
    expect(() => buildModel(modelPreset('mlp')).stage(2, 2)).toThrow(ConfigError);
  });

  it('initParams is deterministic, per-layer seeded, He/Glorot bounded, with zero biases', () => {
    const m = buildModel(modelPreset('mlp'));
    const a = m.initParams(42);
    expect(Array.from(a)).toEqual(Array.from(m.initParams(42)));
    expect(Array.from(a.subarray(0, 100))).not.toEqual(Array.from(m.initParams(43).subarray(0, 100)));
    const [k1, b1, k2, b2] = m.params as [
      (typeof m.params)[0],
      (typeof m.params)[0],
      (typeof m.params)[0],
      (typeof m.params)[0],
    ];
    const slice = (p: typeof k1): Float32Array => a.subarray(p.offset, p.offset + p.size);
    const maxAbs = (v: Float32Array): number => v.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
    expect(maxAbs(slice(k1))).toBeLessThanOrEqual(Math.sqrt(6 / 784)); // He: followed by relu
    expect(maxAbs(slice(k1))).toBeGreaterThan(0.9 * Math.sqrt(6 / 784));
    expect(maxAbs(slice(k2))).toBeLessThanOrEqual(Math.sqrt(6 / (128 + 10))); // Glorot
    expect(maxAbs(slice(b1)) + maxAbs(slice(b2))).toBe(0);
    // a stage initialises its own slice without drawing the others'
    const stage = m.stage(2, 3);
    expect(Array.from(stage.initParams(42))).toEqual(Array.from(a.subarray(stage.paramOffset)));
    // golden values: a change here changes every run's starting point (and cross-version checkpoints)
    expect(Array.from(a.subarray(0, 3)).map((v) => v.toFixed(6))).toMatchInlineSnapshot(`
      [
        "-0.059522",
        "-0.025372",
        "-0.075476",
      ]
    `);
  });
});

describe.each(['cpu', 'wasm'] as const)('model on %s', (backend) => {
  beforeAll(async () => {
    await activateBackend(backend);
  });
  afterAll(async () => {
    await activateBackend('cpu');
  });

  for (const spec of [smallMlp, smallCnn]) {
    it(`${spec.name}: loss is the mean softmax cross-entropy and grads equal autodiff`, async () => {
      const model = buildModel(spec);
      const params = model.initParams(7);
      // non-zero biases so their gradients are exercised through every path
      for (let i = 0; i < params.length; i++) if (params[i] === 0) params[i] = 0.01 * ((i % 5) - 2);
      const { x, labels } = batch(model, 5, 3);
      const ours = await model.lossAndGrads(params, x, labels);
      await activateBackend('cpu');
      const ref = await autodiff(model, params, x, labels);
      await activateBackend(backend);
      expect(Math.abs(ours.loss - ref.loss)).toBeLessThan(1e-5);
      for (const p of model.params) {
        expectClose(
          ours.grads.subarray(p.offset, p.offset + p.size),
          ref.grads.subarray(p.offset, p.offset + p.size),
          1e-5,
          p.name,
        );
      }
    });
  }

  it('the loss is the mean over the batch of -log softmax[label]', async () => {
    const model = buildModel(smallMlp);
    const params = model.initParams(1);
    const { x, labels } = batch(model, 4, 9);
    const probs = await model.predict(params, x);
    const expected =
      labels.reduce((s, y, i) => s - Math.log(probs[i * model.classes + y]!), 0) / labels.length;
    const { loss } = await model.lossAndGrads(params, x, labels);
    expect(loss).toBeCloseTo(expected, 5);
    // probabilities sum to one per row
    for (let i = 0; i < 4; i++) {
      expect(probs.subarray(i * 4, i * 4 + 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
  });

  it('prime readies each dense kernel on wasm only, leaves no tensor and changes no result', async () => {
    for (const spec of [smallMlp, smallCnn]) {
      const model = buildModel(spec);
      const stage = model.stage(0, model.layers.length);
      const params = model.initParams(3);
      const { x } = batch(model, 4, 2);
      const xt = tf.tensor2d(x, [4, model.inputSize]);
      const run = async (primed: boolean): Promise<{ y: Float32Array; kernels: string[] }> => {
        const w = stage.uploadParams(params);
        const before = tf.memory().numTensors;
        const info = await tf.profile(() => {
          if (primed) stage.prime(w);
        });
        expect(tf.memory().numTensors).toBe(before);
        const f = stage.forward(xt, w);
        const y = await f.y.data<'float32'>();
        f.y.dispose();
        disposeSaved(f.saved);
        tf.dispose(w);
        return { y, kernels: info.kernels.map((k) => k.name) };
      };
      const plain = await run(false);
      const primed = await run(true);
      expect(primed.y).toEqual(plain.y);
      const dense = model.layers.filter((l) => l.spec.kind === 'dense').length;
      const products = primed.kernels.filter((k) => k === 'BatchMatMul').length;
      expect(products).toBe(backend === 'wasm' ? dense : 0);
      xt.dispose();
    }
  });

  it('stages [0, k) then [k, n) chained by hand give the whole model gradients', async () => {
    const model = buildModel(smallCnn);
    const params = model.initParams(11);
    const { x, labels } = batch(model, 4, 5);
    const whole = await model.lossAndGrads(params, x, labels);
    const before = tf.memory().numTensors;
    const s1 = model.stage(0, 3);
    const s2 = model.stage(3, model.layers.length);
    expect(s1.outputShape).toEqual(s2.inputShape);
    const w1 = s1.uploadParams(params.subarray(s1.paramOffset, s1.paramOffset + s1.paramCount));
    const w2 = s2.uploadParams(params.subarray(s2.paramOffset, s2.paramOffset + s2.paramCount));
    const xt = tf.tensor2d(x, [4, model.inputSize]);
    const f1 = s1.forward(xt, w1);
    xt.dispose(); // the stage keeps its own handle
    const f2 = s2.forward(f1.y, w2);
    f1.y.dispose(); // the activation "sent" to the next stage
    const { softmaxCrossEntropy } = await import('./loss.ts');
    const l = tf.tidy(() => softmaxCrossEntropy(f2.y, tf.tensor1d(labels, 'int32')));
    const b2 = s2.backward(l.dlogits, f2.saved, w2);
    const b1 = s1.backward(b2.dx!, f1.saved, w1, { needInputGrad: false });
    expect(b1.dx).toBeUndefined();
    const grads = new Float32Array(model.paramCount);
    await readTensorsInto(b1.grads, grads, s1.paramOffset);
    await readTensorsInto(b2.grads, grads, s2.paramOffset);
    expectClose(grads, whole.grads, 1e-6, 'staged grads');
    expect((await l.loss.data())[0]).toBeCloseTo(whole.loss, 6);
    disposeSaved(f1.saved);
    disposeSaved(f2.saved);
    tf.dispose([w1, w2, f2.y, l, b1, b2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses arrays of the wrong size with ShapeError', async () => {
    const model = buildModel(smallMlp);
    const params = model.initParams(1);
    await expect(model.lossAndGrads(params.subarray(1), new Float32Array(12), [0])).rejects.toThrow(
      ShapeError,
    );
    await expect(model.lossAndGrads(params, new Float32Array(13), [0])).rejects.toThrow(ShapeError);
    await expect(model.evaluate(params, new Float32Array(24), [0])).rejects.toThrow(ShapeError);
  });
});

describe('tensor hygiene', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });

  it('numTensors stays flat across 1000 training steps, evaluate and predict', async () => {
    const model = buildModel(smallCnn);
    const params = model.initParams(3);
    const { x, labels } = batch(model, 2, 1);
    const grads = new Float32Array(model.paramCount);
    await model.lossAndGrads(params, x, labels, grads); // first call may register kernels/caches
    const before = tf.memory().numTensors;
    for (let step = 0; step < 1000; step++) {
      await model.lossAndGrads(params, x, labels, grads);
      for (let i = 0; i < params.length; i++) params[i] = params[i]! - 0.01 * grads[i]!;
      if (step % 250 === 0) expect(tf.memory().numTensors).toBe(before);
    }
    await model.evaluate(params, x, labels, { batch: 1 });
    await model.predict(params, x);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluate honours its AbortSignal', async () => {
    const model = buildModel(smallMlp);
    const { x, labels } = batch(model, 4, 1);
    const before = tf.memory().numTensors;
    await expect(
      model.evaluate(model.initParams(1), x, labels, { signal: AbortSignal.abort(), batch: 2 }),
    ).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
