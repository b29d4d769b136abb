// Training with the parameters, gradients and optimizer state kept on the device (webgpu, webgl).
//
// The CPU path (model.lossAndGrads + @peertrain/optim) uploads every parameter tensor and reads
// every gradient tensor back on every step; on a GPU those transfers and their waits cost more than
// the arithmetic (27.6 ms per CNN step on an H200 at batch 24 and at batch 96 alike). Here the
// parameters live in one flat variable [P] (one upload at the start), a step's gradients are one
// flat tensor [P] made by one concat, the optimizer is a handful of elementwise ops on [P], and the
// only transfers are the batch up and what the caller asks for back (the loss; the gradients when
// the method exchanges them; the parameters when they are evaluated).
//
// The update is float32 arithmetic on the device, not @peertrain/optim's float64 JavaScript: the
// replicas of a run on the same kind of device still apply identical updates, while a replica on
// another backend may differ in the last bits (within the reference tolerance, see the tests).
import type { OptimizerConfig } from '@peertrain/protocol';
import { ShapeError } from './errors.ts';
import { softmaxCrossEntropy } from './loss.ts';
import type { Labels, Model } from './model.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';
import { readInto } from './transfer.ts';

/** Backends on which keeping the training state on the device pays (separate memory, costly readbacks). */
export function prefersDeviceTraining(backend: string = tf.getBackend()): boolean {
  return backend === 'webgpu' || backend === 'webgl';
}

export interface DeviceTrainer {
  readonly paramCount: number;
  /**
   * Forward and backward over one batch (x [B * inputSize] or a tensor [B, ...inputShape], labels
   * [B]); the loss and the flat gradients [P] stay on the device until `apply` (or the next call).
   */
  compute(x: Float32Array | Tensor, labels: Labels): void;
  /**
   * The last computed batch's mean loss (reads 4 bytes, asynchronously). The read owns the loss
   * tensor from here, so it may still be in flight while the next steps run (one step late).
   */
  readLoss(): Promise<number>;
  /** Reads the last computed gradients [P] into `out`, asynchronously. */
  readGrads(out: Float32Array): Promise<void>;
  /**
   * params -= update(grads) on the device: `grads` [P] is the exchanged mean (uploaded once); without
   * it the last computed gradients (a single worker, the reference). Releases the step's tensors.
   */
  apply(grads?: Float32Array): void;
  /** Reads the parameters [P] into `out`, asynchronously. */
  readParams(out: Float32Array): Promise<void>;
  /** Optimizer updates applied so far. */
  readonly steps: number;
  dispose(): void;
}

/** The optimizer's state as device variables and its update as tf ops on the flat [P] tensors. */
interface DeviceOptimizer {
  /** Returns the new parameters; keeps its own state in variables. Runs inside a tidy. */
  update(p: Tensor, g: Tensor): Tensor;
  dispose(): void;
}

/** A variable [P] of zeros (tidy: the initial value's own handle is released; the variable stays). */
function zerosVariable(paramCount: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zeros([paramCount]), false));
}

function deviceOptimizer(cfg: OptimizerConfig, lr: number, paramCount: number): DeviceOptimizer {
  if (cfg.kind === 'sgd') {
    if (cfg.momentum === 0) return { update: (p, g) => tf.sub(p, tf.mul(g, lr)), dispose: () => undefined };
    const v = zerosVariable(paramCount); // [P] velocity
    return {
      update(p, g) {
        // PyTorch convention, as @peertrain/optim: v = m v + g; p -= lr v
        const vNew = tf.add(tf.mul(v, cfg.momentum), g);
        v.assign(vNew);
        return tf.sub(p, tf.mul(vNew, lr));
      },
      dispose: () => v.dispose(),
    };
  }
  const m = zerosVariable(paramCount); // [P] first moment
  const v = zerosVariable(paramCount); // [P] second moment
  let beta1Power = 1; // running products in float64, as @peertrain/optim
  let beta2Power = 1;
  return {
    update(p, g) {
      const { beta1, beta2, epsilon } = cfg;
      beta1Power *= beta1;
      beta2Power *= beta2;
      const stepSize = lr / (1 - beta1Power);
      const sqrtCorrection2 = Math.sqrt(1 - beta2Power);
      const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      m.assign(mNew);
      v.assign(vNew);
      const denom = tf.add(tf.div(tf.sqrt(vNew), sqrtCorrection2), epsilon);
      return tf.sub(p, tf.div(tf.mul(mNew, stepSize), denom));
    },
    dispose: () => tf.dispose([m, v]),
  };
}

/**
 * A trainer for the whole model starting at `params` [P] (copied to the device once). Its tensors
 * are the caller's until `dispose`; tf.memory() stays flat across steps.
 */
export function createDeviceTrainer(
  model: Model,
  params: Float32Array,
  optimizer: { config: OptimizerConfig; lr: number },
): DeviceTrainer {
  if (params.length !== model.paramCount) {
    throw new ShapeError(`model has ${model.paramCount} parameters, got ${params.length}`);
  }
  const whole = model.stage(0, model.layers.length);
  const sizes = model.params.map((p) => p.size);
  const p = tf.tidy(() => tf.variable(tf.tensor1d(params, 'float32'), false)); // [P], copied
  const opt = deviceOptimizer(optimizer.config, optimizer.lr, model.paramCount);
  let held: { loss: Tensor | null; grads: Tensor } | null = null; // scalar (null once read); [P]
  let steps = 0;
  const release = (): void => {
    if (held) tf.dispose(held.loss ? [held.loss, held.grads] : [held.grads]);
    held = null;
  };
  const need = (): { loss: Tensor | null; grads: Tensor } => {
    if (!held) throw new ShapeError('no gradients computed since the last apply');
    return held;
  };

  return {
    paramCount: model.paramCount,
    get steps() {
      return steps;
    },
    compute(x, labels) {
      const batch = labels.length;
      const xSize = x instanceof Float32Array ? x.length : x.size;
      if (batch < 1 || xSize !== batch * model.inputSize) {
        throw new ShapeError(`x has ${xSize} floats; ${batch} labels need ${batch} x ${model.inputSize}`);
      }
      release();
      held = tf.tidy(() => {
        // views of the flat variable, one per parameter tensor in model.params order
        const w = tf.split(p, sizes).map((t, i) => tf.reshape(t, model.params[i]!.shape as number[]));
        const xt = x instanceof Float32Array ? tf.tensor2d(x, [batch, model.inputSize]) : x;
        const f = whole.forward(xt, w);
        const l = softmaxCrossEntropy(f.y, tf.tensor1d(Int32Array.from(labels), 'int32'));
        const b = whole.backward(l.dlogits, f.saved, w, { needInputGrad: false });
        return { loss: l.loss, grads: tf.concat(b.grads.map((g) => tf.reshape(g, [-1]))) };
      });
    },
    async readLoss() {
      const h = need();
      const loss = h.loss;
      if (!loss) throw new ShapeError('the loss of this step was read already');
      h.loss = null;
      try {
        return (await loss.data<'float32'>())[0]!;
      } finally {
        loss.dispose();
      }
    },
    async readGrads(out) {
      if (out.length !== model.paramCount) throw new ShapeError(`grads buffer has ${out.length} elements`);
      await readInto(need().grads, out);
    },
    apply(grads) {
      if (grads !== undefined && grads.length !== model.paramCount) {
        throw new ShapeError(`gradients have ${grads.length} elements, model ${model.paramCount}`);
      }
      tf.tidy(() => {
        const g = grads === undefined ? need().grads : tf.tensor1d(grads, 'float32');
        p.assign(opt.update(p, g) as tf.Tensor1D);
      });
      steps++;
      release();
    },
    async readParams(out) {
      if (out.length !== model.paramCount) throw new ShapeError(`params buffer has ${out.length} elements`);
      await readInto(p, out);
    },
    dispose() {
      release();
      opt.dispose();
      p.dispose();
    },
  };
}
