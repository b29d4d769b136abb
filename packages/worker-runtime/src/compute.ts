import type { BackwardHooks } from '@peertrain/engine';
import type { DeviceInfo, LayerCost, RunConfig, Shard, StageRange } from '@peertrain/protocol';

/**
 * What the worker runtime needs from a compute engine. The runtime owns the protocol, the
 * collectives and the optimizer; the engine only turns (parameters, step) into gradients.
 * `engineCompute` (engine-compute.ts) implements it with TensorFlow.js.
 */
export interface Compute {
  readonly device: DeviceInfo;
  /** Loads (or reuses from cache) the shard's data, builds the model: ready for step 0. */
  prepare(run: PrepareRun, opts: { signal?: AbortSignal }): Promise<TrainSession>;
  /** Each layer's forward + backward time on this device for one micro-batch of `config` (pipeline planning). */
  profile(config: RunConfig, opts: { signal?: AbortSignal }): Promise<LayerCost[]>;
  /** What the engine holds now (TensorFlow.js tf.memory()); cheap: called on every ping. */
  memory?(): EngineMemory;
  dispose(): void;
}

export interface EngineMemory {
  numBytes: number;
  numTensors: number;
  /** Only where the backend has GPU memory of its own (webgl, webgpu). */
  numBytesInGPU?: number;
  /** The engine's count is not exact (tfjs's own flag). */
  unreliable?: boolean;
}

/** What one pipeline step leaves behind on a stage. */
export interface StageStepOutcome {
  /** Mean loss of the batch (last stage only). */
  readonly loss: number | null;
  readonly peakActivationBytes: number;
  readonly peakActivationBytesNoRecompute: number;
}

/**
 * One pipeline stage of a run: layers [first, end). The runtime walks the schedule's ops and moves
 * the Float32Arrays between stages; the tensors stay in here.
 */
export interface StageSession {
  readonly first: number;
  readonly end: number;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  /** The stage's parameters are the model's [paramOffset, paramOffset + paramCount). */
  readonly paramOffset: number;
  readonly paramCount: number;
  /** Uploads the parameters and loads the step's batch (prefetched). */
  beginStep(step: number, params: Float32Array, opts: { signal?: AbortSignal }): Promise<void>;
  /** input from the previous stage (null on the first); resolves with the output to send (null on the last). */
  forward(mb: number, input: Float32Array | null): Promise<Float32Array | null>;
  /** dy from the next stage (null on the last); resolves with dx to send back (null on the first). */
  backward(mb: number, dy: Float32Array | null): Promise<Float32Array | null>;
  /**
   * Split backward (zero-bubble schedules), optional: backwardInput is backward's dx alone (what the
   * previous stage waits for); backwardWeight(mb) later adds the micro-batch's parameter gradients.
   */
  backwardInput?(mb: number, dy: Float32Array | null): Promise<Float32Array | null>;
  backwardWeight?(mb: number): Promise<void>;
  /** Writes the step's gradient sum into `grads` and ends the step. */
  endStep(grads: Float32Array): Promise<StageStepOutcome>;
  /** Drops what a cancelled step holds. */
  reset(): void;
  /**
   * Where the stage computes on another thread (a compute thread): when its last forward /
   * backward / backwardInput / backwardWeight ran there, on this thread's clock. The call's own
   * time also holds the hops there and back and the wait for the thread's turn, which are not
   * computation. Absent (or undefined) where the call's time is the computation's.
   */
  lastRan?(): Ran | undefined;
}

/**
 * A data-parallel replica whose parameters, gradients and optimizer state live on the device. A
 * step is `compute`, then either `apply()` (one worker) or `readGrads`, the exchange and
 * `apply(mean)`; only the loss and what is exchanged are read back, asynchronously.
 */
export interface DeviceSteps {
  /** Forward and backward of this worker's batch for `step` (prefetched); results stay on the device. */
  compute(step: number, opts: { signal?: AbortSignal }): Promise<void>;
  /** The computed batch's mean loss; may be awaited after `apply` (the read owns the value). */
  readLoss(): Promise<number>;
  /** The computed gradients [P] into `out`. */
  readGrads(out: Float32Array): Promise<void>;
  /** params -= update(mean) with the exchanged mean [P]; without it the computed gradients. */
  apply(mean?: Float32Array): void;
  /** The parameters [P] into `out` (evaluation, the final model, the reference). */
  readParams(out: Float32Array): Promise<void>;
  dispose(): void;
}

/**
 * When a computation ran, in ms on the page's clock (performance.now()): given where it ran away
 * from the caller's thread (a compute thread), whose call also took the hops there and back and
 * waited for its turn; absent where the call's own duration is the computation's.
 */
export interface Ran {
  startMs: number;
  endMs: number;
}

/** A batch's mean loss and its gradients [P]. */
export interface Gradients {
  loss: number;
  grads: Float32Array;
  ran?: Ran;
}

export interface PrepareRun {
  config: RunConfig;
  shard: Shard;
  allShards: readonly Shard[];
}

export interface TrainSession {
  readonly paramCount: number;
  /** The model's layers (stage ranges run over [0, layerCount)); where the engine says. */
  readonly layerCount?: number;
  /** Shape of each parameter tensor, laid out back to back in the flat array (PowerSGD's matrices). */
  readonly paramShapes: readonly (readonly number[])[];
  /** Deterministic initial parameters from config.seed: identical bytes on every worker. */
  initParams(): Float32Array;
  /**
   * Mean-loss gradients of this worker's batch for `step` (its shard's batch of config.batch).
   * The next step's batch is prefetched while this one computes. `out` [P] receives them when
   * given; with `hooks` each layer's gradients are handed out as the backward pass computes them
   * (last layer first) and other tasks run between layers (overlapped all-reduce), same values.
   */
  gradients(
    params: Float32Array,
    step: number,
    opts: { signal?: AbortSignal; out?: Float32Array; hooks?: BackwardHooks },
  ): Promise<Gradients>;
  /**
   * Mean-loss gradients of `shard`'s batch for `step`, the batch that shard's original rank draws,
   * not prefetched. An elastic run's session (config.elastic) holds every shard's samples; another
   * holds its own shard's only (DiLoCo's fill steps draw batches past the run's last step there).
   */
  gradientsOf?(
    params: Float32Array,
    step: number,
    shard: Shard,
    opts: { signal?: AbortSignal; out?: Float32Array },
  ): Promise<Gradients>;
  /**
   * GPU backends (webgpu, webgl) only: training state that stays on the device from `params` [P]
   * (copied once), with config.optimizer applied there. Absent where the JavaScript path is faster
   * (wasm, cpu): the method then keeps its Float32Arrays and @peertrain/optim.
   */
  deviceSteps?(params: Float32Array): DeviceSteps;
  /**
   * Loss and accuracy on the whole test split, or with `part` on its rows
   * [floor(index T / of), floor((index + 1) T / of)) (sharded-eval.ts).
   */
  evaluate(
    params: Float32Array,
    opts: { signal?: AbortSignal; part?: { index: number; of: number } },
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
  /** Pipeline / hybrid: layers [first, end) of the model, on this shard's batches. */
  stage(range: StageRange): StageSession;
  /** Where each stage's parameters sit in the model's flat array. */
  paramRange(range: StageRange): { offset: number; count: number };
  dispose(): void;
}
