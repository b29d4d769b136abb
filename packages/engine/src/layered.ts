// Forward, loss and a backward pass that hands each layer's parameter gradients out as soon as they
// are computed, last layer first, and yields to the event loop between layers: what overlapped data
// parallelism (PyTorch DDP's bucket hooks) needs to all-reduce the last layers' gradients while the
// first layers' are still being computed. The kernels and their order are exactly lossAndGrads', so
// the gradients are bit-identical to it (only the tidy scopes differ, and they do not touch values).
import { yieldToEventLoop } from '@peertrain/base';
import { ShapeError } from './errors.ts';
import { softmaxCrossEntropy } from './loss.ts';
import type { Labels, LossAndGrads, Stage } from './model.ts';
import { disposeSaved, readTensorsInto } from './model.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

/**
 * Called as the backward pass walks the layers, last to first. `atMs`: when it happened, on the
 * caller's clock, where the pass runs on another thread (a compute thread's proxy passes it);
 * the engine, calling them as it goes, leaves it out (now).
 */
export interface BackwardHooks {
  /** Layer `layer`'s backward begins (the forward and the loss are done before the first call). */
  layerStart?(layer: number, atMs?: number): void;
  /**
   * Layer `layer`'s parameter gradients are final: `grads` is the view [offset, offset + count) of
   * the flat gradient vector (empty for a layer without parameters). Called for every layer.
   */
  layerGrads(layer: number, offset: number, grads: Float32Array, atMs?: number): void;
}

/**
 * lossAndGrads of the whole model (`whole`, already validated inputs), with the backward pass one
 * layer at a time: after layer i's backward its dw are read into `grads` and hooks.layerGrads runs,
 * then the event loop gets a turn before layer i-1. x: [B * inputSize] floats, or a tensor
 * [B, ...] owned by the caller.
 */
export async function layeredLossAndGrads(
  whole: Stage,
  params: Float32Array,
  x: Float32Array | Tensor,
  labels: Labels,
  grads: Float32Array,
  hooks: BackwardHooks,
): Promise<LossAndGrads> {
  if (!(x instanceof Float32Array)) return layeredBackward(whole, params, x, labels, grads, hooks);
  const xt = tf.tensor(x, [labels.length, x.length / labels.length]);
  try {
    return await layeredBackward(whole, params, xt, labels, grads, hooks);
  } finally {
    xt.dispose();
  }
}

async function layeredBackward(
  whole: Stage,
  params: Float32Array,
  xt: Tensor,
  labels: Labels,
  grads: Float32Array,
  hooks: BackwardHooks,
): Promise<LossAndGrads> {
  const { layers } = whole;
  const w = whole.uploadParams(params);
  // index of each layer's first tensor in `w`
  const wStart = layers.map((_, i) => layers.slice(0, i).reduce((a, l) => a + l.params.length, 0));
  let saved: Tensor[][] = [];
  let g: Tensor | undefined;
  let lossT: Tensor | undefined;
  try {
    const f = whole.forward(xt, w);
    saved = f.saved;
    const l = tf.tidy(() => softmaxCrossEntropy(f.y, tf.tensor1d(Int32Array.from(labels), 'int32')));
    f.y.dispose();
    lossT = l.loss;
    g = l.dlogits; // [B, classes]
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i]!;
      hooks.layerStart?.(i);
      if (g === undefined) throw new ShapeError('no gradient to propagate'); // unreachable
      const dy = g;
      const needDx = i > 0;
      const layerW = w.slice(wStart[i], wStart[i]! + layer.params.length);
      // [...dw, dx?]: a plain array, the container tidy keeps
      const out: Tensor[] = tf.tidy(() => {
        const r = layer.backward(dy, saved[i]!, layerW, needDx);
        if (!needDx) return [...r.dw];
        if (r.dx === undefined) throw new ShapeError(`layer ${i} gave no input gradient`);
        return [...r.dw, r.dx];
      });
      dy.dispose();
      g = needDx ? out.pop() : undefined;
      try {
        await readTensorsInto(out, grads, layer.paramOffset);
      } finally {
        tf.dispose(out);
      }
      hooks.layerGrads(
        i,
        layer.paramOffset,
        grads.subarray(layer.paramOffset, layer.paramOffset + layer.paramCount),
      );
      if (i > 0) await yieldToEventLoop();
    }
    const loss = await lossT.data<'float32'>();
    return { loss: loss[0]!, grads };
  } finally {
    tf.dispose(w);
    disposeSaved(saved);
    g?.dispose();
    lossT?.dispose();
  }
}
