import type { DeviceInfo, RunConfig, Shard } from '@peertrain/protocol';

/**
 * What the worker runtime needs from a compute engine. The runtime owns the protocol, the
 * collectives and the optimizer; the engine only turns (parameters, step) into gradients.
 * `engineCompute` (engine-compute.ts) implements it with TensorFlow.js.
 */
export interface Compute {
  readonly device: DeviceInfo;
  /** Loads (or reuses from cache) the shard's data, builds the model: ready for step 0. */
  prepare(run: PrepareRun, opts: { signal?: AbortSignal }): Promise<TrainSession>;
  dispose(): void;
}

export interface PrepareRun {
  config: RunConfig;
  shard: Shard;
  allShards: readonly Shard[];
}

export interface TrainSession {
  readonly paramCount: number;
  /** Deterministic initial parameters from config.seed: identical bytes on every worker. */
  initParams(): Float32Array;
  /**
   * Mean-loss gradients of this worker's batch for `step` (its shard's batch of config.batch).
   * The next step's batch is prefetched while this one computes.
   */
  gradients(
    params: Float32Array,
    step: number,
    opts: { signal?: AbortSignal },
  ): Promise<{ loss: number; grads: Float32Array }>;
  /** Loss and accuracy on the whole test split. */
  evaluate(
    params: Float32Array,
    opts: { signal?: AbortSignal },
  ): Promise<{ loss: number; accuracy: number; count: number }>;
  /**
   * Trains the single-worker reference from the same seed on the union of every rank's batches
   * (global batch = workers * batch) for config.steps steps and compares `params` with it
   * (per-tensor relative difference: see engine's paramDiff).
   */
  reference(
    params: Float32Array,
    opts: { signal?: AbortSignal },
  ): Promise<{ maxAbsDiff: number; maxRelDiff: number; referenceLoss: number }>;
  dispose(): void;
}
