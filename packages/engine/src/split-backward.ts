// A stage's backward in two parts, for zero-bubble pipeline schedules (ZB-H1, Qi et al. 2023):
//   input part (I):  walk the layers last to first computing only each layer's input gradient (the
//                    dx the previous stage waits for), keeping the output gradient dy_i of every
//                    layer that has parameters;
//   weight part (W): each such layer's parameter gradients from dy_i and its saved inputs; nobody
//                    waits for them, so a schedule puts them into the bubble.
// The kernels are Stage.backward's (the layers' explicit VJPs, dx and dw asked for separately), so
// I then W gives the same numbers as one backward.
import { ShapeError } from './errors.ts';
import type { SavedActivations, Stage } from './model.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

export interface InputGradPass {
  /** [B, ...stage.inputShape]; undefined when not asked (the model's first stage). */
  readonly dx: Tensor | undefined;
  /** Per layer: its output gradient [B, ...layer.outputShape] when it has parameters, else undefined. */
  readonly dys: (Tensor | undefined)[];
}

/** Each layer's slice of the stage's parameter tensors (`w` in `stage.params` order). */
function layerWeights(stage: Stage, w: readonly Tensor[]): (readonly Tensor[])[] {
  const out: (readonly Tensor[])[] = [];
  let at = 0;
  for (const l of stage.layers) {
    out.push(w.slice(at, at + l.params.length));
    at += l.params.length;
  }
  return out;
}

/**
 * The input part: dy [B, ...stage.outputShape] -> dx, and the output gradients the weight part
 * needs. Does not dispose dy or saved; the caller owns what it returns.
 */
export function inputGradPass(
  stage: Stage,
  dy: Tensor,
  saved: SavedActivations,
  w: readonly Tensor[],
  needInputGrad: boolean,
): InputGradPass {
  const { layers } = stage;
  if (saved.length !== layers.length)
    throw new ShapeError(
      `stage [${stage.first}, ${stage.end}) expects saved tensors of ${layers.length} layers`,
    );
  const lw = layerWeights(stage, w);
  return tf.tidy(() => {
    let g: Tensor | undefined = tf.reshape(dy, [dy.shape[0], ...stage.outputShape]);
    const dys: (Tensor | undefined)[] = layers.map(() => undefined);
    for (let i = layers.length - 1; i >= 0; i--) {
      if (g === undefined) throw new ShapeError('no gradient to propagate'); // unreachable
      const layer = layers[i]!;
      if (layer.params.length > 0) dys[i] = g;
      g = layer.backward(g, saved[i]!, lw[i]!, i > 0 || needInputGrad, false).dx;
    }
    // tidy keeps tensors inside returned containers (an array of tensors and holes)
    return { dx: g, dys };
  });
}

/**
 * The weight part: one gradient per entry of `stage.params` (same order and shapes as
 * Stage.backward's grads), from the input part's dys and the forward's saved tensors.
 */
export function weightGradPass(
  stage: Stage,
  dys: readonly (Tensor | undefined)[],
  saved: SavedActivations,
  w: readonly Tensor[],
): Tensor[] {
  const lw = layerWeights(stage, w);
  return tf.tidy(() => {
    const grads: Tensor[][] = [];
    stage.layers.forEach((layer, i) => {
      const dy = dys[i];
      if (layer.params.length === 0) return void (grads[i] = []);
      if (!dy) throw new ShapeError(`layer ${layer.index}: no output gradient for its weights`);
      grads[i] = layer.backward(dy, saved[i]!, lw[i]!, false, true).dw;
    });
    return grads.flat();
  });
}
