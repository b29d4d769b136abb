// Layers with an explicit forward and an explicit backward (vector-Jacobian product).
//
// Shapes: every `inputShape`/`outputShape` here is per sample (no batch dimension); tensors carry
// the batch first: dense [B, in] -> [B, units], conv2d/maxpool NHWC [B, H, W, C].
// `forward` returns what `backward` needs (`saved`); neither disposes anything: callers run them
// inside tf.tidy (model.ts does) and own the saved tensors in between.
import { ConfigError } from '@peertrain/protocol';
import type { LayerSpec } from '@peertrain/protocol';
import { mulberry32 } from '@peertrain/base';
import { mixSeed } from './prng.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

/** One parameter tensor of the model and where it lives in the flat parameter array. */
export interface ParamInfo {
  /** e.g. "2.conv2d.kernel" */
  readonly name: string;
  readonly layer: number;
  /** dense kernel [in, units]; conv kernel [k, k, inChannels, filters] (HWIO); bias [units|filters] */
  readonly shape: readonly number[];
  readonly size: number;
  /** Offset in the model's flat Float32Array. */
  readonly offset: number;
}

export type LayerForward = {
  /** [B, ...outputShape] */
  readonly y: Tensor;
  /** What backward needs (inputs and/or outputs); owned by the caller. */
  readonly saved: Tensor[];
};

export type LayerBackward = {
  /** [B, ...inputShape]; absent when not requested (first layer of the model). */
  readonly dx: Tensor | undefined;
  /** One gradient per parameter of the layer, same order and shapes as `params`. */
  readonly dw: Tensor[];
};

export interface Layer {
  readonly index: number;
  readonly spec: LayerSpec;
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly params: readonly ParamInfo[];
  /** First element of this layer's parameters in the model's flat array. */
  readonly paramOffset: number;
  readonly paramCount: number;
  /** Forward floating-point operations per sample (multiply-add = 2); backward is about twice. */
  readonly flops: number;
  /** x: [B, ...inputShape]; w: this layer's parameter tensors in `params` order. */
  forward(x: Tensor, w: readonly Tensor[]): LayerForward;
  /**
   * needDw false (the input-gradient part of a split backward): dw is empty, only dx is computed.
   * Layers without parameters ignore it.
   */
  backward(
    dy: Tensor,
    saved: readonly Tensor[],
    w: readonly Tensor[],
    needDx: boolean,
    needDw?: boolean,
  ): LayerBackward;
  /** Writes this layer's initial parameters into `out` (the layer's slice of the flat array). */
  init(out: Float32Array, seed: number): void;
  /**
   * Readies the backend for new parameters `w` before the first forward with them, where that
   * costs something (see `primeDense`); the caller disposes what it creates (run it in a tidy).
   */
  prime?(w: readonly Tensor[]): void;
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** TF's 'same' padding: total = max((out - 1) * stride + k - in, 0), the extra pixel at the end. */
function samePadding(inSize: number, outSize: number, k: number, stride: number): [number, number] {
  const total = Math.max((outSize - 1) * stride + k - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * Uniform initialisation from a per-layer seed (so a pipeline stage can initialise its own layers
 * without drawing the others'). He uniform before a relu, Glorot uniform otherwise; biases zero.
 */
function initKernel(
  out: Float32Array,
  size: number,
  fanIn: number,
  fanOut: number,
  he: boolean,
  seed: number,
): void {
  const limit = he ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
  const rand = mulberry32(seed);
  for (let i = 0; i < size; i++) out[i] = (2 * rand() - 1) * limit;
  out.fill(0, size);
}

function expectRank(spec: LayerSpec, index: number, inputShape: readonly number[], rank: number): void {
  if (inputShape.length !== rank) {
    const hint = spec.kind === 'dense' ? ' (add a flatten layer before it)' : '';
    throw new ConfigError('invalid model', [
      `layer ${index} (${spec.kind}) needs a rank-${rank} input per sample, got [${inputShape.join(', ')}]${hint}`,
    ]);
  }
}

interface LayerContext {
  readonly index: number;
  readonly inputShape: readonly number[];
  readonly paramOffset: number;
  /** The next layer is a relu: use He initialisation. */
  readonly beforeRelu: boolean;
}

function paramInfos(ctx: LayerContext, kind: string, shapes: Record<string, readonly number[]>): ParamInfo[] {
  let offset = ctx.paramOffset;
  return Object.entries(shapes).map(([name, shape]) => {
    const size = product(shape);
    const info = { name: `${ctx.index}.${kind}.${name}`, layer: ctx.index, shape, size, offset };
    offset += size;
    return info;
  });
}

type LayerBody = Omit<
  Layer,
  'index' | 'spec' | 'inputShape' | 'paramOffset' | 'paramCount' | 'params' | 'init'
> & {
  readonly params?: ParamInfo[];
  readonly init?: (out: Float32Array, seed: number) => void;
};

function finish(spec: LayerSpec, ctx: LayerContext, body: LayerBody): Layer {
  const params = body.params ?? [];
  return {
    ...body,
    index: ctx.index,
    spec,
    inputShape: ctx.inputShape,
    params,
    paramOffset: ctx.paramOffset,
    paramCount: params.reduce((a, p) => a + p.size, 0),
    init: body.init ?? (() => undefined),
  };
}

/**
 * matMul with transposed operands. tfjs-backend-wasm only sends the plain product to XNNPACK; with
 * a transpose flag it runs a naive loop, about 9x slower for the MLP's backward (measured: 6.2 ms vs
 * 0.7 ms for x^T dy at batch 96), so there the operand is transposed first. Other backends fold
 * the transpose into the kernel.
 */
function matMulT(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/** GPU backends run bias addition inside the matmul / conv kernel (one dispatch fewer per layer). */
function fusesBias(): boolean {
  const b = tf.getBackend();
  return b === 'webgpu' || b === 'webgl';
}

/**
 * dy [B, units] @ w^T -> [B, in]. On wasm, as (w @ dy^T)^T: the same products, but the transposes
 * are of the small [B, *] tensors, not of the kernel (transposing a 1024 x 1024 kernel made this
 * 63 ms against 2.3 ms at B = 16, measured in Node).
 */
function denseInputGrad(dy: Tensor, w: Tensor): Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(dy, w, false, true);
  return tf.transpose(tf.matMul(w, tf.transpose(dy)));
}

/**
 * On wasm a matmul's right operand goes to XNNPACK, which packs it into its own layout the first
 * time it sees that tensor and keeps the packing until the tensor is disposed. Every step uploads
 * new kernels, so the step's first forward paid the packing: a 1024 x 1024 kernel at 16 rows took
 * 6.2 ms instead of 1.3 (Node, tfjs-backend-wasm 4.22). A one-row product packs it ahead, where a
 * pipeline stage waits for its first input anyway; the rows after it run at the packed speed.
 */
function primeDense(inUnits: number, w: Tensor): void {
  if (tf.getBackend() === 'wasm') tf.matMul(tf.zeros([1, inUnits]), w);
}

function dense(spec: Extract<LayerSpec, { kind: 'dense' }>, ctx: LayerContext): Layer {
  expectRank(spec, ctx.index, ctx.inputShape, 1);
  const inUnits = ctx.inputShape[0]!;
  const units = spec.units;
  const params = paramInfos(ctx, 'dense', { kernel: [inUnits, units], bias: [units] });
  return finish(spec, ctx, {
    outputShape: [units],
    params,
    flops: 2 * inUnits * units,
    forward(x, [w, b]) {
      // x [B, in] @ w [in, units] + b [units] -> [B, units]
      const y = fusesBias() ? tf.fused.matMul({ a: x, b: w!, bias: b! }) : tf.add(tf.matMul(x, w!), b!);
      return { y, saved: [x] };
    },
    backward(dy, [x], [w], needDx, needDw = true) {
      return {
        dx: needDx ? denseInputGrad(dy, w!) : undefined, // [B, units] @ w^T -> [B, in]
        dw: needDw ? [matMulT(x!, dy, true, false), tf.sum(dy, 0)] : [], // x^T @ dy -> [in, units]; [units]
      };
    },
    init(out, seed) {
      initKernel(out, inUnits * units, inUnits, units, ctx.beforeRelu, mixSeed(seed, ctx.index));
    },
    prime: ([w]) => primeDense(inUnits, w!),
  });
}

function padAmounts(
  inShape: readonly number[],
  outShape: readonly number[],
  k: number,
  stride: number,
  padding: 'same' | 'valid',
): { top: number; bottom: number; left: number; right: number } {
  if (padding === 'valid') return { top: 0, bottom: 0, left: 0, right: 0 };
  const [top, bottom] = samePadding(inShape[1]!, outShape[1]!, k, stride);
  const [left, right] = samePadding(inShape[2]!, outShape[2]!, k, stride);
  return { top, bottom, left, right };
}

/**
 * dL/dkernel of a conv2d as a convolution, for backends without Conv2DBackpropFilter (wasm), where
 * the forward conv runs on XNNPACK (about 10x faster than im2col from slices there):
 *   dW[kh, kw, c, f] = sum over b, oh, ow of xpad[b, oh*s + kh, ow*s + kw, c] * dy[b, oh, ow, f]
 * is a 'valid' correlation of xpad with batch and channels swapped ([C, Hp, Wp, B]) by dy used as a
 * filter ([OH, OW, B, F]) dilated by the forward stride. x [B, H, W, C], dy [B, OH, OW, F] -> [k, k, C, F].
 */
export function conv2dFilterGradByConv(
  x: Tensor,
  dy: Tensor,
  k: number,
  stride: number,
  padding: 'same' | 'valid',
): Tensor {
  const c = x.shape[3]!;
  const f = dy.shape[3]!;
  const { top, bottom, left, right } = padAmounts(x.shape, dy.shape, k, stride, padding);
  const xp = tf.pad(x, [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ]);
  const xt = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D; // [C, Hp, Wp, B]
  const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, B, F]
  let g: Tensor = tf.conv2d(xt, filter, 1, 'valid', 'NHWC', stride); // [C, >=k, >=k, F]
  // rows and columns the forward never reached ('valid' leftovers) come out past k: drop them
  if (g.shape[1] !== k || g.shape[2] !== k) g = tf.slice(g, [0, 0, 0, 0], [c, k, k, f]);
  return tf.transpose(g, [1, 2, 0, 3]);
}

/**
 * dL/dx of a stride-1 conv2d as a convolution of the padded dy with the flipped kernel, in/out
 * channels swapped (wasm: its Conv2DBackpropInput is about 10x slower than its Conv2D).
 * dy [B, OH, OW, F], kernel [k, k, C, F] -> [B, H, W, C].
 */
export function conv2dInputGradByConv(
  dy: Tensor,
  kernel: Tensor,
  inputShape: readonly number[],
  padding: 'same' | 'valid',
): Tensor {
  const k = kernel.shape[0];
  const [, h, w] = inputShape as [number, number, number, number];
  const [, oh, ow] = dy.shape as [number, number, number, number];
  const { top, left } = padAmounts(inputShape, dy.shape, k, 1, padding);
  // dx[i] = sum_t dy[i + top - t] W[t]: a full correlation with the kernel flipped
  const padded = tf.pad(dy, [
    [0, 0],
    [k - 1 - top, h - oh + top],
    [k - 1 - left, w - ow + left],
    [0, 0],
  ]);
  const flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [k, k, F, C]
  return tf.conv2d(padded as tf.Tensor4D, flipped, 1, 'valid');
}

/** Backend kernels are looked up once per backend name. */
const hasKernelCache = new Map<string, boolean>();
function backendHasKernel(kernel: string): boolean {
  const key = `${tf.getBackend()}/${kernel}`;
  let has = hasKernelCache.get(key);
  if (has === undefined) {
    has = tf.getKernel(kernel, tf.getBackend()) !== undefined;
    hasKernelCache.set(key, has);
  }
  return has;
}

function conv2d(spec: Extract<LayerSpec, { kind: 'conv2d' }>, ctx: LayerContext): Layer {
  expectRank(spec, ctx.index, ctx.inputShape, 3);
  const [h, w, c] = ctx.inputShape as [number, number, number];
  const { filters, kernel: k, stride, padding } = spec;
  const oh = padding === 'same' ? Math.ceil(h / stride) : Math.floor((h - k) / stride) + 1;
  const ow = padding === 'same' ? Math.ceil(w / stride) : Math.floor((w - k) / stride) + 1;
  if (oh < 1 || ow < 1) {
    throw new ConfigError('invalid model', [
      `layer ${ctx.index} (conv2d): kernel ${k} larger than input ${h}x${w}`,
    ]);
  }
  const filterShape: [number, number, number, number] = [k, k, c, filters];
  const params = paramInfos(ctx, 'conv2d', { kernel: filterShape, bias: [filters] });
  return finish(spec, ctx, {
    outputShape: [oh, ow, filters],
    params,
    flops: 2 * k * k * c * filters * oh * ow,
    forward(x, [kern, b]) {
      // [B, H, W, C] * [k, k, C, F] -> [B, OH, OW, F]
      const x4 = x as tf.Tensor4D;
      const f4 = kern as tf.Tensor4D;
      const y = fusesBias()
        ? tf.fused.conv2d({ x: x4, filter: f4, strides: stride, pad: padding, bias: b! })
        : tf.add(tf.conv2d(x4, f4, stride, padding), b!);
      return { y, saved: [x] };
    },
    backward(dy, [x], [kern], needDx, needDw = true) {
      const dy4 = dy as tf.Tensor4D;
      const x4 = x as tf.Tensor4D;
      let dx: Tensor | undefined; // [B, H, W, C]
      if (needDx && stride === 1 && tf.getBackend() === 'wasm') {
        dx = conv2dInputGradByConv(dy4, kern!, x4.shape, padding);
      } else if (needDx) {
        dx = tf.conv2dTranspose(dy4, kern as tf.Tensor4D, x4.shape, stride, padding);
      }
      if (!needDw) return { dx, dw: [] };
      const dk = !avoidKernel('Conv2DBackpropFilter')
        ? tf
            .engine()
            .runKernel<Tensor>(
              'Conv2DBackpropFilter',
              { x: x4, dy: dy4 },
              { strides: [stride, stride], pad: padding, dataFormat: 'NHWC', filterShape },
            )
        : conv2dFilterGradByConv(x4, dy4, k, stride, padding);
      return { dx, dw: [dk, tf.sum(dy, [0, 1, 2])] };
    },
    init(out, seed) {
      initKernel(
        out,
        k * k * c * filters,
        k * k * c,
        k * k * filters,
        ctx.beforeRelu,
        mixSeed(seed, ctx.index),
      );
    },
  });
}

/**
 * Kernels we must not use for training on some backends, with the measured reason. The wasm
 * backend (tfjs 4.22) has no Conv2DBackpropFilter, and its MaxPoolGrad and MaxPoolWithArgmax start
 * the running max at FLT_MIN (the smallest positive float), so a window of negative values gets
 * no gradient, and give tied maxima's gradient to the last instead of the first (layers.test.ts
 * shows both against autodiff). There we use the functions above.
 */
function avoidKernel(kernel: 'Conv2DBackpropFilter' | 'MaxPoolGrad'): boolean {
  return !backendHasKernel(kernel) || (kernel === 'MaxPoolGrad' && tf.getBackend() === 'wasm');
}

/** On wasm, non-overlapping power-of-two windows can still use its MaxPoolGrad on marked input. */
function markedMaxPoolGrad(size: number, stride: number): boolean {
  return (
    tf.getBackend() === 'wasm' && stride === size && isPowerOfTwo(size) && backendHasKernel('MaxPoolGrad')
  );
}

/**
 * Max-pool backward for non-overlapping windows whose size is a power of two, through the
 * backend's MaxPoolGrad kernel on a rewritten input. The wasm kernel starts its running max at
 * FLT_MIN (windows of non-positive values lose their gradient) and keeps the LAST of tied maxima
 * (autodiff and the other backends keep the first; MNIST strokes tie all the time). Feeding it
 * x' = 1 + (x == window max) * (size^2 - tap), tap = the position's index in its window in
 * row-major order, makes the first tied maximum the unique maximum, every value >= 1. The window
 * max comes back to full size by nearest-neighbour upsampling, exact for a power-of-two factor.
 * x [B, H, W, C], y and dy [B, OH, OW, C] -> [B, H, W, C].
 */
export function maxPoolGradByMarking(dy: Tensor, x: Tensor, y: Tensor, size: number): Tensor {
  const [batch, h, w, c] = x.shape as [number, number, number, number];
  const [, oh, ow] = y.shape as [number, number, number, number];
  const [hh, ww] = [oh * size, ow * size]; // rows/columns a window covers ('valid' drops the rest)
  const whole = hh === h && ww === w;
  const xc = whole ? x : tf.slice(x, [0, 0, 0, 0], [batch, hh, ww, c]);
  const windowMax = tf.image.resizeNearestNeighbor(y as tf.Tensor4D, [hh, ww]);
  const rank = new Float32Array(hh * ww); // size^2 - tap: earlier in the window ranks higher
  for (let i = 0; i < hh; i++) {
    for (let j = 0; j < ww; j++) rank[i * ww + j] = size * size - ((i % size) * size + (j % size));
  }
  const isMax = tf.cast(tf.equal(xc, windowMax), 'float32');
  const marked = tf.add<tf.Tensor4D>(tf.mul(isMax, tf.tensor4d(rank, [1, hh, ww, 1])), 1);
  const dx = tf
    .engine()
    .runKernel<Tensor>(
      'MaxPoolGrad',
      { dy, input: marked, output: tf.maxPool(marked, size, size, 'valid') },
      { filterSize: [size, size], strides: [size, size], pad: 'valid' },
    );
  return whole
    ? dx
    : tf.pad(dx, [
        [0, 0],
        [0, h - hh],
        [0, w - ww],
        [0, 0],
      ]);
}

const isPowerOfTwo = (n: number): boolean => n >= 1 && (n & (n - 1)) === 0;

/**
 * Max-pool backward from plain ops: for each window tap in row-major order, the first input equal
 * to the window's max takes the window's dy (the same tie rule as tfjs's MaxPoolGrad), then a
 * scatterND adds the dy values into place (summing positions shared by overlapping windows).
 * x: [B, H, W, C], y and dy: [B, OH, OW, C] -> [B, H, W, C]. 'valid' padding.
 */
export function maxPoolGradByTaps(dy: Tensor, x: Tensor, y: Tensor, size: number, stride: number): Tensor {
  const [batch, h, w, c] = x.shape as [number, number, number, number];
  const [, oh, ow] = y.shape as [number, number, number, number];
  // flat index into x of each window's top-left input: [B, OH, OW, C]
  const axis = (n: number, step: number, shape: number[]): Tensor =>
    tf.reshape(tf.range(0, n * step, step, 'int32'), shape);
  const corner = tf.add(
    tf.add(axis(batch, h * w * c, [batch, 1, 1, 1]), axis(oh, stride * w * c, [1, oh, 1, 1])),
    tf.add(axis(ow, stride * c, [1, 1, ow, 1]), axis(c, 1, [1, 1, 1, c])),
  ); // broadcast to [B, OH, OW, C]
  let argmax = tf.fill([batch, oh, ow, c], -1, 'int32');
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const tap = tf.stridedSlice(
        x,
        [0, i, j, 0],
        [batch, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, c],
        [1, stride, stride, 1],
      );
      const first = tf.logicalAnd(tf.equal(tap, y), tf.less(argmax, 0));
      argmax = tf.where(first, tf.add(corner, tf.scalar((i * w + j) * c, 'int32')), argmax);
    }
  }
  const flat = tf.scatterND(tf.reshape(argmax, [argmax.size, 1]), tf.reshape(dy, [dy.size]), [
    batch * h * w * c,
  ]);
  return tf.reshape(flat, [batch, h, w, c]);
}

function maxpool(spec: Extract<LayerSpec, { kind: 'maxpool' }>, ctx: LayerContext): Layer {
  expectRank(spec, ctx.index, ctx.inputShape, 3);
  const [h, w, c] = ctx.inputShape as [number, number, number];
  const size = spec.size;
  const stride = spec.stride ?? size;
  // 'valid' pooling: a trailing row/column that does not fill a window is dropped
  const oh = Math.floor((h - size) / stride) + 1;
  const ow = Math.floor((w - size) / stride) + 1;
  if (oh < 1 || ow < 1) {
    throw new ConfigError('invalid model', [
      `layer ${ctx.index} (maxpool): window ${size} larger than ${h}x${w}`,
    ]);
  }
  return finish(spec, ctx, {
    outputShape: [oh, ow, c],
    flops: size * size * c * oh * ow,
    forward(x) {
      const y = tf.maxPool(x as tf.Tensor4D, size, stride, 'valid'); // [B, OH, OW, C]
      return { y, saved: [x, y] };
    },
    backward(dy, [x, y], _w, needDx) {
      if (!needDx) return { dx: undefined, dw: [] };
      if (avoidKernel('MaxPoolGrad')) {
        const dx = markedMaxPoolGrad(size, stride)
          ? maxPoolGradByMarking(dy, x!, y!, size)
          : maxPoolGradByTaps(dy, x!, y!, size, stride);
        return { dx, dw: [] };
      }
      const dx = tf
        .engine()
        .runKernel<Tensor>(
          'MaxPoolGrad',
          { dy, input: x!, output: y! },
          { filterSize: [size, size], strides: [stride, stride], pad: 'valid' },
        );
      return { dx, dw: [] };
    },
  });
}

function flatten(spec: Extract<LayerSpec, { kind: 'flatten' }>, ctx: LayerContext): Layer {
  const size = product(ctx.inputShape);
  return finish(spec, ctx, {
    outputShape: [size],
    flops: 0,
    forward(x) {
      return { y: tf.reshape(x, [x.shape[0], size]), saved: [] };
    },
    backward(dy, _saved, _w, needDx) {
      return { dx: needDx ? tf.reshape(dy, [dy.shape[0], ...ctx.inputShape]) : undefined, dw: [] };
    },
  });
}

function activation(spec: Extract<LayerSpec, { kind: 'relu' | 'tanh' }>, ctx: LayerContext): Layer {
  const size = product(ctx.inputShape);
  const relu = spec.kind === 'relu';
  return finish(spec, ctx, {
    outputShape: ctx.inputShape,
    flops: size,
    forward(x) {
      if (relu) return { y: tf.relu(x), saved: [x] };
      const y = tf.tanh(x);
      return { y, saved: [y] };
    },
    backward(dy, [s], _w, needDx) {
      if (!needDx) return { dx: undefined, dw: [] };
      // relu: dy * (x > 0); tanh: dy * (1 - y^2)
      const dx = relu ? tf.mul(dy, tf.step(s!)) : tf.mul(dy, tf.sub(1, tf.square(s!)));
      return { dx, dw: [] };
    },
  });
}

/** Builds the layers of a model, inferring every layer's input and output shapes. */
export function buildLayers(inputShape: readonly number[], specs: readonly LayerSpec[]): Layer[] {
  const layers: Layer[] = [];
  let shape = inputShape;
  let paramOffset = 0;
  specs.forEach((spec, index) => {
    const ctx: LayerContext = {
      index,
      inputShape: shape,
      paramOffset,
      beforeRelu: specs[index + 1]?.kind === 'relu',
    };
    let layer: Layer;
    switch (spec.kind) {
      case 'dense':
        layer = dense(spec, ctx);
        break;
      case 'conv2d':
        layer = conv2d(spec, ctx);
        break;
      case 'maxpool':
        layer = maxpool(spec, ctx);
        break;
      case 'flatten':
        layer = flatten(spec, ctx);
        break;
      case 'relu':
      case 'tanh':
        layer = activation(spec, ctx);
        break;
      default: {
        const unknownSpec: never = spec;
        throw new ConfigError('invalid model', [`unknown layer ${JSON.stringify(unknownSpec)}`]);
      }
    }
    layers.push(layer);
    shape = layer.outputShape;
    paramOffset += layer.paramCount;
  });
  return layers;
}
