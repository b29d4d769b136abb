import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerSpec } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { buildLayers, conv2dFilterGradByConv, conv2dInputGradByConv, maxPoolGradByTaps } from './layers.ts';
import { expectClose, randomArray } from './testing.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

// Every layer's explicit backward against tfjs autodiff (tf.grads) of the same function written
// directly with tfjs ops. The reference is always computed on the cpu backend (wasm has no
// Conv2DBackpropFilter, so autodiff of conv2d cannot run there); the layer runs on each backend.

interface Case {
  name: string;
  inputShape: number[];
  spec: LayerSpec;
  /** The layer's function in plain tfjs: x [B, ...inputShape], w its parameters. */
  reference: (x: Tensor, w: Tensor[]) => Tensor;
}

const cases: Case[] = [
  {
    name: 'dense',
    inputShape: [7],
    spec: { kind: 'dense', units: 5 },
    reference: (x, [w, b]) => tf.add(tf.matMul(x, w!), b!),
  },
  {
    name: 'conv2d 3x3 same stride 1',
    inputShape: [6, 6, 2],
    spec: { kind: 'conv2d', filters: 3, kernel: 3, stride: 1, padding: 'same' },
    reference: (x, [w, b]) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b!),
  },
  {
    name: 'conv2d 3x3 same stride 2 (uneven padding)',
    inputShape: [7, 8, 2],
    spec: { kind: 'conv2d', filters: 3, kernel: 3, stride: 2, padding: 'same' },
    reference: (x, [w, b]) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), b!),
  },
  {
    name: 'conv2d 2x2 valid stride 2',
    inputShape: [7, 7, 3],
    spec: { kind: 'conv2d', filters: 4, kernel: 2, stride: 2, padding: 'valid' },
    reference: (x, [w, b]) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'), b!),
  },
  {
    name: 'conv2d 2x2 same stride 1 (padding only after)',
    inputShape: [5, 6, 2],
    spec: { kind: 'conv2d', filters: 3, kernel: 2, stride: 1, padding: 'same' },
    reference: (x, [w, b]) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b!),
  },
  {
    name: 'conv2d 3x3 valid stride 1',
    inputShape: [6, 5, 2],
    spec: { kind: 'conv2d', filters: 2, kernel: 3, stride: 1, padding: 'valid' },
    reference: (x, [w, b]) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'), b!),
  },
  {
    name: 'maxpool 2 on odd sizes (last row and column dropped)',
    inputShape: [7, 5, 2],
    spec: { kind: 'maxpool', size: 2 },
    reference: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'),
  },
  {
    name: 'maxpool 4',
    inputShape: [8, 8, 2],
    spec: { kind: 'maxpool', size: 4 },
    reference: (x) => tf.maxPool(x as tf.Tensor4D, 4, 4, 'valid'),
  },
  {
    name: 'maxpool 2',
    inputShape: [6, 6, 3],
    spec: { kind: 'maxpool', size: 2 },
    reference: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'),
  },
  {
    name: 'maxpool 3 stride 2',
    inputShape: [7, 7, 2],
    spec: { kind: 'maxpool', size: 3, stride: 2 },
    reference: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid'),
  },
  { name: 'relu', inputShape: [4, 3], spec: { kind: 'relu' }, reference: (x) => tf.relu(x) },
  { name: 'tanh', inputShape: [9], spec: { kind: 'tanh' }, reference: (x) => tf.tanh(x) },
  {
    name: 'flatten',
    inputShape: [3, 2, 2],
    spec: { kind: 'flatten' },
    reference: (x) => tf.reshape(x, [x.shape[0], 12]),
  },
];

const BATCH = 3;
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

interface Values {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array[];
}

function inputs(c: Case): {
  x: Float32Array;
  w: Float32Array[];
  dy: Float32Array;
  outShape: readonly number[];
} {
  const [layer] = buildLayers(c.inputShape, [c.spec]);
  const x = randomArray(BATCH * size(c.inputShape), 1);
  const w = layer!.params.map((p, i) => randomArray(p.size, 10 + i));
  const dy = randomArray(BATCH * size(layer!.outputShape), 2);
  return { x, w, dy, outShape: layer!.outputShape };
}

async function referenceValues(c: Case): Promise<Values> {
  await activateBackend('cpu');
  const { x, w, dy, outShape } = inputs(c);
  const [layer] = buildLayers(c.inputShape, [c.spec]);
  const shapes = layer!.params.map((p) => p.shape as number[]);
  const out = tf.tidy(() => {
    const xt = tf.tensor(x, [BATCH, ...c.inputShape]);
    const wt = w.map((v, i) => tf.tensor(v, shapes[i]));
    const dyt = tf.tensor(dy, [BATCH, ...outShape]);
    const y = c.reference(xt, wt);
    // d/d(x, w) of sum(f(x, w) * dy) is the vector-Jacobian product with dy
    const grads = tf.grads((...args: Tensor[]) => tf.sum(tf.mul(c.reference(args[0]!, args.slice(1)), dyt)))([
      xt,
      ...wt,
    ]);
    return { y, grads };
  });
  const [y, ...g] = await Promise.all([
    out.y.data<'float32'>(),
    ...out.grads.map((t) => t.data<'float32'>()),
  ]);
  tf.dispose(out);
  return { y: y, dx: g[0]!, dw: g.slice(1) };
}

async function layerValues(c: Case): Promise<Values> {
  const { x, w, dy, outShape } = inputs(c);
  const [layer] = buildLayers(c.inputShape, [c.spec]);
  const out = tf.tidy(() => {
    const xt = tf.tensor(x, [BATCH, ...c.inputShape]);
    const wt = layer!.params.map((p, i) => tf.tensor(w[i]!, p.shape as number[]));
    const f = layer!.forward(xt, wt);
    const b = layer!.backward(tf.tensor(dy, [BATCH, ...outShape]), f.saved, wt, true);
    return { y: f.y, dx: b.dx!, dw: b.dw };
  });
  expect(out.y.shape).toEqual([BATCH, ...layer!.outputShape]);
  expect(out.dx.shape).toEqual([BATCH, ...c.inputShape]);
  out.dw.forEach((t, i) => expect(t.shape).toEqual(layer!.params[i]!.shape));
  const [y, dx, ...dw] = await Promise.all([out.y, out.dx, ...out.dw].map((t) => t.data<'float32'>()));
  tf.dispose(out);
  return { y: y!, dx: dx!, dw };
}

describe.each(['cpu', 'wasm'] as const)('layer backward equals autodiff on %s', (backend) => {
  afterAll(async () => {
    await activateBackend('cpu');
  });

  for (const c of cases) {
    it(c.name, async () => {
      const ref = await referenceValues(c);
      await activateBackend(backend);
      const before = tf.memory().numTensors;
      const got = await layerValues(c);
      expect(tf.memory().numTensors).toBe(before);
      expectClose(got.y, ref.y, 1e-5, 'y');
      expectClose(got.dx, ref.dx, 1e-5, 'dx');
      expect(got.dw.length).toBe(ref.dw.length);
      got.dw.forEach((g, i) => expectClose(g, ref.dw[i]!, 1e-5, `dw[${i}]`));
    });
  }
});

describe('conv2d gradients as convolutions (the wasm path)', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });

  for (const [k, stride, padding, h, w] of [
    [3, 1, 'same', 7, 8],
    [3, 2, 'same', 7, 8],
    [3, 2, 'valid', 8, 7], // a leftover row the forward never reaches
    [2, 1, 'same', 5, 5],
    [2, 3, 'valid', 8, 8],
  ] as const) {
    it(`k ${k} stride ${stride} ${padding} on ${h}x${w}: filter gradient equals autodiff`, async () => {
      const x = tf.tensor4d(randomArray(2 * h * w * 3, 5), [2, h, w, 3]);
      const kern = tf.tensor4d(randomArray(k * k * 3 * 4, 6), [k, k, 3, 4]);
      const y = tf.conv2d(x, kern, stride, padding);
      const dy = tf.tensor4d(randomArray(y.size, 7), y.shape);
      const ref = tf.grads((xv: Tensor, kv: Tensor) =>
        tf.sum(tf.mul(tf.conv2d(xv as tf.Tensor4D, kv as tf.Tensor4D, stride, padding), dy)),
      )([x, kern]);
      const dk = conv2dFilterGradByConv(x, dy, k, stride, padding);
      expect(dk.shape).toEqual([k, k, 3, 4]);
      expectClose(await dk.data(), await ref[1]!.data(), 1e-5, 'dkernel');
      if (stride === 1) {
        const dx = conv2dInputGradByConv(dy, kern, x.shape, padding);
        expectClose(await dx.data(), await ref[0]!.data(), 1e-5, 'dx');
      }
      tf.dispose([x, kern, y, dy, ...ref, dk]);
    });
  }
});

describe.each(['cpu', 'wasm'] as const)('max-pool layer backward with ties on %s', (backend) => {
  afterAll(async () => {
    await activateBackend('cpu');
  });

  // MNIST strokes are runs of equal pixels: windows with tied maxima, positive and zero
  for (const [size, stride, h] of [
    [2, 2, 9],
    [4, 4, 8],
    [3, 2, 7],
    [3, 3, 7],
  ] as const) {
    it(`size ${size} stride ${stride}: the first maximum of each window gets dy, like autodiff`, async () => {
      const values = randomArray(2 * h * h * 3, 8).map((v) => (v > 0.5 ? 1 : v > 0 ? 0 : v));
      await activateBackend('cpu');
      const x = tf.tensor4d(values, [2, h, h, 3]);
      const y = tf.maxPool(x, size, stride, 'valid');
      const dy = tf.tensor4d(randomArray(y.size, 9), y.shape);
      const ref = tf.grad((v: Tensor) =>
        tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, size, stride, 'valid'), dy)),
      )(x);
      const expected = await ref.data();
      const dyValues = await dy.data();
      tf.dispose([x, y, dy, ref]);
      await activateBackend(backend);
      const [layer] = buildLayers([h, h, 3], [{ kind: 'maxpool', size, stride }]);
      const dx = tf.tidy(() => {
        const f = layer!.forward(tf.tensor4d(values, [2, h, h, 3]), []);
        return layer!.backward(tf.tensor(dyValues, f.y.shape), f.saved, [], true).dx!;
      });
      expectClose(await dx.data(), expected, 1e-6);
      dx.dispose();
    });
  }
});

describe('max-pool gradient from plain ops (the wasm path)', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });

  for (const [size, stride] of [
    [2, 2],
    [3, 2],
    [2, 1],
  ] as const) {
    it(`size ${size} stride ${stride} equals autodiff, negative inputs and ties included`, async () => {
      // a third of the inputs are exactly 0 (as after a relu): windows with ties
      const values = randomArray(2 * 7 * 6 * 3, 8).map((v) => (v > 0.33 ? 0 : v));
      const x = tf.tensor4d(values, [2, 7, 6, 3]);
      const y = tf.maxPool(x, size, stride, 'valid');
      const dy = tf.tensor4d(randomArray(y.size, 9), y.shape);
      const ref = tf.grad((v: Tensor) =>
        tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, size, stride, 'valid'), dy)),
      )(x);
      const ours = maxPoolGradByTaps(dy, x, y, size, stride);
      expectClose(await ours.data(), await ref.data(), 1e-6);
      tf.dispose([x, y, dy, ref, ours]);
    });
  }
});
