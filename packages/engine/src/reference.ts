// The compute path every data-parallel worker and the single-worker reference share, and the
// reference itself: one worker at global batch N*b on the union of the N workers' batches.
import { createOptimizer } from '@peertrain/optim';
import type { Optimizer } from '@peertrain/optim';
import { throwIfAborted } from '@peertrain/base';
import type { ModelSpec, OptimizerConfig, Shard } from '@peertrain/protocol';
import { gatherBatch, globalBatchIndices } from './data/batching.ts';
import type { Dataset, Samples } from './data/dataset.ts';
import { trainSamples } from './data/dataset.ts';
import { createDeviceTrainer, prefersDeviceTraining } from './device-train.ts';
import { ShapeError } from './errors.ts';
import { buildModel } from './model.ts';
import type { Model } from './model.ts';

/** The parts of the run configuration that decide the numbers. */
export interface TrainingConfig {
  readonly lr: number;
  readonly optimizer: OptimizerConfig;
  /** Per-worker batch size. */
  readonly batch: number;
  /** Seeds both the initial parameters and the batch shuffles. */
  readonly seed: number;
}

/**
 * One replica's training state: the model, its flat parameters and the optimizer. A worker calls
 * `gradients(myIndices)`, averages the gradient with its peers, then `apply(mean)`; the reference
 * calls `gradients(globalIndices)` then `apply` on its own result.
 */
export interface Replica {
  readonly model: Model;
  readonly params: Float32Array;
  readonly optimizer: Optimizer;
  /** Mean loss and d(mean loss)/d(params) over the samples at `indices` (global training indices). */
  gradients(indices: Int32Array): Promise<{ loss: number; grads: Float32Array }>;
  /** params -= optimizer update(grads). */
  apply(grads: Float32Array): void;
}

/** A replica at the run's initial parameters (`model.initParams(config.seed)` unless given). */
export function createReplica(
  spec: ModelSpec | Model,
  config: TrainingConfig,
  samples: Samples,
  initialParams?: Float32Array,
): Replica {
  const model = 'layers' in spec && 'paramCount' in spec ? spec : buildModel(spec);
  const params = initialParams ? initialParams.slice() : model.initParams(config.seed);
  if (params.length !== model.paramCount) {
    throw new ShapeError(`initial parameters: ${params.length}, model has ${model.paramCount}`);
  }
  const optimizer = createOptimizer(config.optimizer, config.lr, model.paramCount);
  const grads = new Float32Array(model.paramCount); // reused: callers copy what they keep
  return {
    model,
    params,
    optimizer,
    async gradients(indices) {
      const batch = gatherBatch(samples, indices, model.inputSize);
      return model.lossAndGrads(params, batch.x, batch.y, grads);
    },
    apply(g) {
      optimizer.step(params, g);
    },
  };
}

export interface ReferenceOptions {
  readonly spec: ModelSpec | Model;
  readonly config: TrainingConfig;
  /** Every rank's shard, in rank order (the planner's plan). */
  readonly shards: readonly Shard[];
  readonly data: Dataset;
  readonly steps: number;
  readonly initialParams?: Float32Array;
  readonly onStep?: (step: number, loss: number) => void;
  readonly signal?: AbortSignal;
}

/**
 * Trains the single-worker reference for `steps` steps at global batch shards.length * batch. On a
 * GPU backend the parameters and optimizer state stay on the device (device-train.ts): nothing is
 * read back per step but the loss, one step late.
 */
export async function trainReference(
  opts: ReferenceOptions,
): Promise<{ params: Float32Array; losses: number[] }> {
  if (prefersDeviceTraining()) return trainReferenceOnDevice(opts);
  const replica = createReplica(opts.spec, opts.config, trainSamples(opts.data), opts.initialParams);
  const losses: number[] = [];
  for (let step = 0; step < opts.steps; step++) {
    throwIfAborted(opts.signal);
    const indices = globalBatchIndices(opts.shards, step, opts.config.batch, opts.config.seed);
    const { loss, grads } = await replica.gradients(indices);
    replica.apply(grads);
    losses.push(loss);
    opts.onStep?.(step, loss);
  }
  return { params: replica.params, losses };
}

async function trainReferenceOnDevice(
  opts: ReferenceOptions,
): Promise<{ params: Float32Array; losses: number[] }> {
  const { config } = opts;
  const model = 'layers' in opts.spec && 'paramCount' in opts.spec ? opts.spec : buildModel(opts.spec);
  const params = opts.initialParams ? opts.initialParams.slice() : model.initParams(config.seed);
  const samples = trainSamples(opts.data);
  const trainer = createDeviceTrainer(model, params, { config: config.optimizer, lr: config.lr });
  const losses: number[] = [];
  let pending: Promise<number> | null = null; // the previous step's loss, read while this one runs
  const settle = async (): Promise<void> => {
    if (!pending) return;
    const loss = await pending;
    pending = null;
    losses.push(loss);
    opts.onStep?.(losses.length - 1, loss);
  };
  try {
    for (let step = 0; step < opts.steps; step++) {
      throwIfAborted(opts.signal);
      const batch = gatherBatch(
        samples,
        globalBatchIndices(opts.shards, step, config.batch, config.seed),
        model.inputSize,
      );
      trainer.compute(batch.x, batch.y);
      const loss = trainer.readLoss();
      trainer.apply();
      await settle();
      pending = loss;
    }
    await settle();
    await trainer.readParams(params);
    return { params, losses };
  } finally {
    // a read still in flight (abort) owns its tensor; the rest goes with the trainer
    pending?.catch(() => undefined);
    trainer.dispose();
  }
}

export interface ParamDiff {
  /** max over all parameters of |a - b| */
  readonly maxAbsDiff: number;
  /** max over parameter tensors of max|a - b| / max|b| */
  readonly maxRelDiff: number;
}

/**
 * How far parameters `a` are from the reference `b`. The relative figure is per parameter tensor,
 * max|a - b| / max|b|, then the max over tensors: an elementwise |a - b| / |b| explodes for the
 * many parameters that sit near zero (a 1e-9 difference on a 1e-10 weight reads as 10x), while
 * scaling by the tensor's largest magnitude measures the error against what the tensor carries.
 * `layout` gives the tensors (e.g. `model.params`); without it the whole vector is one tensor.
 */
export function paramDiff(
  a: Float32Array,
  b: Float32Array,
  layout: readonly { readonly offset: number; readonly size: number }[] = [{ offset: 0, size: b.length }],
): ParamDiff {
  if (a.length !== b.length) throw new ShapeError(`paramDiff: ${a.length} vs ${b.length} parameters`);
  let maxAbsDiff = 0;
  let maxRelDiff = 0;
  for (const { offset, size } of layout) {
    let diff = 0;
    let scale = 0;
    for (let i = offset; i < offset + size; i++) {
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!)); // NaN propagates: a diverged run never looks equal
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    maxAbsDiff = Math.max(maxAbsDiff, diff);
    const rel = scale > 0 ? diff / scale : diff > 0 ? Number.POSITIVE_INFINITY : 0;
    maxRelDiff = Math.max(maxRelDiff, rel);
  }
  return { maxAbsDiff, maxRelDiff };
}
