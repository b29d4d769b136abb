// A model is a list of layers with inferred shapes and one flat Float32Array of parameters.
// Any contiguous range of layers [first, end) runs as a unit (a `Stage`): the whole model is the
// stage [0, layers.length) followed by the softmax cross-entropy loss, and a pipeline worker runs
// its own range with the same code.
import { ConfigError, ModelSpecSchema } from '@peertrain/protocol';
import { throwIfAborted, yieldToEventLoop } from '@peertrain/base';
import type { ModelSpec } from '@peertrain/protocol';
import { ShapeError } from './errors.ts';
import { layeredLossAndGrads } from './layered.ts';
import type { BackwardHooks } from './layered.ts';
import { buildLayers } from './layers.ts';
import type { Layer, ParamInfo } from './layers.ts';
import { softmaxCrossEntropy } from './loss.ts';
import { tf } from './tf.ts';
import { readInto, tensorOf } from './transfer.ts';
import type { Tensor } from './tf.ts';

/** Class indices, one per sample. */
export type Labels = Uint8Array | Int32Array | readonly number[];

/** Per-layer tensors kept by `Stage.forward` for `Stage.backward`; free with `disposeSaved`. */
export type SavedActivations = Tensor[][];

export type StageForward = {
  /** [B, ...stage.outputShape]; owned by the caller. */
  readonly y: Tensor;
  readonly saved: SavedActivations;
};

export type StageBackward = {
  /** [B, ...stage.inputShape]: the gradient to send to the previous stage (absent if not asked). */
  readonly dx: Tensor | undefined;
  /** One gradient tensor per entry of `stage.params`, same order and shapes. */
  readonly grads: Tensor[];
};

/** A contiguous range of layers [first, end) that runs as a unit. */
export interface Stage {
  readonly first: number;
  readonly end: number;
  readonly layers: readonly Layer[];
  /** Per sample, without the batch dimension. */
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** The stage's parameter tensors, offsets in the model's flat array. */
  readonly params: readonly ParamInfo[];
  /** The stage's parameters are `modelParams.subarray(paramOffset, paramOffset + paramCount)`. */
  readonly paramOffset: number;
  readonly paramCount: number;
  /** Deterministic initial parameters of these layers (same bytes as the model's slice). */
  initParams(seed: number): Float32Array;
  /** One tensor per `params` entry from the stage's flat slice (copied); the caller disposes them. */
  uploadParams(stageParams: Float32Array): Tensor[];
  /** Readies the backend for these uploaded parameters ahead of the first forward (Layer.prime). */
  prime(w: readonly Tensor[]): void;
  /** x: [B, ...inputShape] (or [B, prod(inputShape)]). Keeps what backward needs. */
  forward(x: Tensor, w: readonly Tensor[]): StageForward;
  /** Forward without keeping anything for backward: [B, ...outputShape]. */
  infer(x: Tensor, w: readonly Tensor[]): Tensor;
  /**
   * dy: [B, ...outputShape], the gradient of the loss with respect to the stage output. Does not
   * dispose `saved` (recomputation may run forward again instead of keeping it).
   */
  backward(
    dy: Tensor,
    saved: SavedActivations,
    w: readonly Tensor[],
    opts?: { needInputGrad?: boolean },
  ): StageBackward;
}

export interface LossAndGrads {
  /** Mean softmax cross-entropy over the batch. */
  readonly loss: number;
  /** d(mean loss)/d(params), flat, same layout as the parameters. */
  readonly grads: Float32Array;
}

export interface Evaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly count: number;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly layers: readonly Layer[];
  readonly inputShape: readonly number[];
  /** prod(inputShape): floats per sample in a flat batch. */
  readonly inputSize: number;
  readonly classes: number;
  readonly paramCount: number;
  readonly params: readonly ParamInfo[];
  /** Deterministic from a seed: identical bytes on every backend and machine. */
  initParams(seed: number): Float32Array;
  stage(first: number, end: number): Stage;
  /**
   * Forward, loss, backward over one batch. x: [B * inputSize] floats (or a tensor
   * [B, ...inputShape]), labels: [B]. `out` receives the gradients when given (reused buffer).
   * With `hooks` the backward pass runs one layer at a time, hands each layer's gradients out as
   * they are ready and yields to the event loop between layers (layered.ts); same bits.
   */
  lossAndGrads(
    params: Float32Array,
    x: Float32Array | Tensor,
    labels: Labels,
    out?: Float32Array,
    hooks?: BackwardHooks,
  ): Promise<LossAndGrads>;
  /** Mean loss and accuracy over a whole set, in batches of `batch` (default 500). */
  evaluate(
    params: Float32Array,
    x: Float32Array,
    labels: Labels,
    opts?: { batch?: number; signal?: AbortSignal },
  ): Promise<Evaluation>;
  /** Class probabilities, [n * classes]. */
  predict(
    params: Float32Array,
    x: Float32Array,
    opts?: { batch?: number; signal?: AbortSignal },
  ): Promise<Float32Array>;
}

/** Releases the tensors kept by `Stage.forward`. */
export function disposeSaved(saved: SavedActivations): void {
  for (const layerSaved of saved) tf.dispose(layerSaved);
}

/** Reads tensors (in order) into consecutive ranges of `out` starting at `offset`; disposes nothing. */
export async function readTensorsInto(
  tensors: readonly Tensor[],
  out: Float32Array,
  offset = 0,
): Promise<void> {
  let at = offset;
  const reads: Promise<void>[] = [];
  for (const t of tensors) {
    reads.push(readInto(t, out, at));
    at += t.size;
  }
  await Promise.all(reads);
}

function makeStage(all: readonly Layer[], first: number, end: number): Stage {
  if (!(Number.isInteger(first) && Number.isInteger(end) && first >= 0 && first < end && end <= all.length)) {
    throw new ConfigError('invalid stage', [`[${first}, ${end}) of ${all.length} layers`]);
  }
  const layers = all.slice(first, end);
  const params = layers.flatMap((l) => l.params);
  const paramOffset = layers[0]!.paramOffset;
  const paramCount = layers.reduce((a, l) => a + l.paramCount, 0);
  const inputShape = layers[0]!.inputShape;
  const outputShape = layers[layers.length - 1]!.outputShape;
  // index of each layer's first tensor in the stage's `w` list
  const wStart = layers.map((_, i) => layers.slice(0, i).reduce((a, l) => a + l.params.length, 0));
  const layerW = (w: readonly Tensor[], i: number): Tensor[] =>
    w.slice(wStart[i], wStart[i]! + layers[i]!.params.length);

  const checkW = (w: readonly Tensor[]): void => {
    if (w.length !== params.length) {
      throw new ShapeError(
        `stage [${first}, ${end}) takes ${params.length} parameter tensors, got ${w.length}`,
      );
    }
  };

  return {
    first,
    end,
    layers,
    inputShape,
    outputShape,
    params,
    paramOffset,
    paramCount,
    initParams(seed) {
      const out = new Float32Array(paramCount);
      for (const l of layers)
        l.init(out.subarray(l.paramOffset - paramOffset, l.paramOffset - paramOffset + l.paramCount), seed);
      return out;
    },
    uploadParams(stageParams) {
      if (stageParams.length !== paramCount) {
        throw new ShapeError(
          `stage [${first}, ${end}) has ${paramCount} parameters, got ${stageParams.length}`,
        );
      }
      return params.map((p) => {
        const at = p.offset - paramOffset;
        return tensorOf(stageParams.subarray(at, at + p.size), p.shape);
      });
    },
    prime(w) {
      checkW(w);
      tf.tidy(() => layers.forEach((l, i) => l.prime?.(layerW(w, i))));
    },
    forward(x, w) {
      checkW(w);
      return tf.tidy(() => {
        // reshape gives the stage its own handle on x: the caller may dispose x after this
        let h = tf.reshape(x, [x.shape[0], ...inputShape]);
        const saved: SavedActivations = [];
        layers.forEach((l, i) => {
          const r = l.forward(h, layerW(w, i));
          saved.push(r.saved);
          h = r.y;
        });
        // a handle distinct from any saved tensor, so disposing y leaves `saved` intact
        return { y: tf.clone(h), saved };
      });
    },
    infer(x, w) {
      checkW(w);
      return tf.tidy(() => {
        let h = tf.reshape(x, [x.shape[0], ...inputShape]);
        layers.forEach((l, i) => {
          h = l.forward(h, layerW(w, i)).y;
        });
        return h;
      });
    },
    backward(dy, saved, w, opts = {}) {
      checkW(w);
      if (saved.length !== layers.length) {
        throw new ShapeError(`stage [${first}, ${end}) expects saved tensors of ${layers.length} layers`);
      }
      const needInputGrad = opts.needInputGrad ?? true;
      return tf.tidy(() => {
        let g: Tensor | undefined = tf.reshape(dy, [dy.shape[0], ...outputShape]);
        const grads: Tensor[][] = [];
        for (let i = layers.length - 1; i >= 0; i--) {
          if (g === undefined) throw new ShapeError('no gradient to propagate'); // unreachable
          const r = layers[i]!.backward(g, saved[i]!, layerW(w, i), i > 0 || needInputGrad);
          grads[i] = r.dw;
          g = r.dx;
        }
        return { dx: g, grads: grads.flat() };
      });
    },
  };
}

function labelTensor(labels: Labels): Tensor {
  return tf.tensor1d(Int32Array.from(labels), 'int32'); // [B]
}

function checkBatch(model: Model, xLength: number, batch: number): void {
  if (batch < 1) throw new ShapeError('empty batch');
  if (xLength !== batch * model.inputSize) {
    throw new ShapeError(`x has ${xLength} floats; ${batch} labels need ${batch} x ${model.inputSize}`);
  }
}

function checkParams(whole: Stage, params: Float32Array): void {
  if (params.length !== whole.paramCount) {
    throw new ShapeError(`model has ${whole.paramCount} parameters, got ${params.length}`);
  }
}

/** Runs `fn` over batches of rows [start, end) of x ([n, inputSize]) with the parameters uploaded once. */
async function inBatches(
  model: Model,
  whole: Stage,
  params: Float32Array,
  x: Float32Array,
  n: number,
  opts: { batch?: number; signal?: AbortSignal },
  fn: (logits: Tensor, start: number, end: number) => Promise<void>,
): Promise<void> {
  checkParams(whole, params);
  checkBatch(model, x.length, n);
  const { inputSize } = model;
  const batch = Math.max(1, opts.batch ?? 250);
  const w = whole.uploadParams(params);
  try {
    for (let start = 0; start < n; start += batch) {
      // wasm's data() settles as a microtask: without a macrotask turn between batches a whole
      // evaluation would hold the page, its heartbeats and its channels (a CNN's 2,000 test
      // digits took seconds under load, and a member silent for the heartbeat timeout is dropped).
      if (start > 0) await yieldToEventLoop();
      throwIfAborted(opts.signal);
      const end = Math.min(n, start + batch);
      const logits = tf.tidy(() =>
        whole.infer(tf.tensor(x.subarray(start * inputSize, end * inputSize), [end - start, inputSize]), w),
      );
      try {
        await fn(logits, start, end);
      } finally {
        logits.dispose();
      }
    }
  } finally {
    tf.dispose(w);
  }
}

/** Builds a model from its spec (validated), with shape inference through every layer. */
export function buildModel(input: ModelSpec): Model {
  const parsed = ModelSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      'invalid model',
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const spec = parsed.data;
  const layers = buildLayers(spec.inputShape, spec.layers);
  const last = layers[layers.length - 1]!;
  if (last.outputShape.length !== 1 || last.outputShape[0] !== spec.classes) {
    throw new ConfigError('invalid model', [
      `the last layer outputs [${last.outputShape.join(', ')}], the loss needs [${spec.classes}]`,
    ]);
  }
  const whole = makeStage(layers, 0, layers.length);
  const inputSize = spec.inputShape.reduce((a, b) => a * b, 1);

  const model: Model = {
    spec,
    layers,
    inputShape: spec.inputShape,
    inputSize,
    classes: spec.classes,
    paramCount: whole.paramCount,
    params: whole.params,
    initParams: (seed) => whole.initParams(seed),
    stage: (first, end) => makeStage(layers, first, end),

    async lossAndGrads(params, x, labels, out, hooks) {
      checkParams(whole, params);
      const batch = labels.length;
      checkBatch(model, x instanceof Float32Array ? x.length : x.size, batch);
      const grads = out ?? new Float32Array(whole.paramCount);
      if (grads.length !== whole.paramCount)
        throw new ShapeError(`grads buffer has ${grads.length} elements`);
      if (hooks !== undefined) return layeredLossAndGrads(whole, params, x, labels, grads, hooks);
      const result = tf.tidy(() => {
        const w = whole.uploadParams(params);
        const xt = x instanceof Float32Array ? tf.tensor(x, [batch, inputSize]) : x;
        const f = whole.forward(xt, w);
        const l = softmaxCrossEntropy(f.y, labelTensor(labels));
        const b = whole.backward(l.dlogits, f.saved, w, { needInputGrad: false });
        return { loss: l.loss, grads: b.grads };
      });
      try {
        const [loss] = await Promise.all([
          result.loss.data<'float32'>(),
          readTensorsInto(result.grads, grads),
        ]);
        return { loss: loss[0]!, grads };
      } finally {
        tf.dispose(result);
      }
    },

    async evaluate(params, x, labels, opts = {}) {
      const n = labels.length;
      let lossSum = 0;
      let correct = 0;
      await inBatches(model, whole, params, x, n, opts, async (logits, start, end) => {
        const r = tf.tidy(() => {
          const y = labelTensor(labels.slice(start, end));
          const l = softmaxCrossEntropy(logits, y, 1); // summed over the batch
          const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'));
          return { loss: l.loss, hits };
        });
        try {
          const [l, h] = await Promise.all([r.loss.data(), r.hits.data()]);
          lossSum += l[0]!;
          correct += h[0]!;
        } finally {
          tf.dispose(r);
        }
      });
      return { loss: lossSum / n, accuracy: correct / n, count: n };
    },

    async predict(params, x, opts = {}) {
      const n = Math.floor(x.length / inputSize);
      const out = new Float32Array(n * spec.classes);
      await inBatches(model, whole, params, x, n, opts, async (logits, start) => {
        const probs = tf.softmax(logits);
        try {
          out.set(await probs.data<'float32'>(), start * spec.classes);
        } finally {
          probs.dispose();
        }
      });
      return out;
    },
  };
  return model;
}
