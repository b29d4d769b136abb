// @peertrain/engine: models, layers, backends, data and the reference trainer. Node-safe (and
// browser-safe): browser-only setup lives in ./browser.ts (the `@peertrain/engine/browser` entry).
export { tf } from './tf.ts';
export type { Tensor } from './tf.ts';
export { DataError, ShapeError } from './errors.ts';
export { mixSeed } from './prng.ts';

export {
  buildLayers,
  conv2dFilterGradByConv,
  conv2dInputGradByConv,
  maxPoolGradByTaps,
  maxPoolGradByMarking,
} from './layers.ts';
export type { Layer, LayerBackward, LayerForward, ParamInfo } from './layers.ts';
export { softmaxCrossEntropy } from './loss.ts';
export type { LossAndGrad } from './loss.ts';
export { buildModel, disposeSaved, readTensorsInto } from './model.ts';
export { yieldToEventLoop } from '@peertrain/base';
export type { BackwardHooks } from './layered.ts';
export type {
  Evaluation,
  Labels,
  LossAndGrads,
  Model,
  SavedActivations,
  Stage,
  StageBackward,
  StageForward,
} from './model.ts';
export { MODEL_PRESETS, modelPreset } from '@peertrain/protocol';
export type { ModelPreset } from '@peertrain/protocol';

export {
  activateBackend,
  benchmarkMatmul,
  describeDevice,
  initBackend,
  probeBackends,
  selectBackend,
  selfCheck,
  setBackendPlatform,
} from './backends.ts';
export type { BackendPlatform, ProbeOptions } from './backends.ts';
export { DEFAULT_WORKLOAD, describeWorkload, timeWorkload, workloadFlops, workloadFor } from './probe.ts';
export type { ProbeLimits, ProbeTiming, ProbeWorkload } from './probe.ts';

export { sampleSize, trainSamples } from './data/dataset.ts';
export type { Dataset, Samples } from './data/dataset.ts';
export { MNIST_MAGIC, MNIST_URL, loadMnist, parseMnist } from './data/mnist.ts';
export type { MnistSource } from './data/mnist.ts';
export { runSyntheticDataset, syntheticDataset } from './data/synthetic.ts';
export type { SyntheticOptions } from './data/synthetic.ts';
export { gatherBatch, globalBatchIndices, shardBatchIndices } from './data/batching.ts';
export type { Batch } from './data/batching.ts';
export { Prefetcher } from './data/prefetch.ts';
export type { PrefetcherOptions, Scheduler } from './data/prefetch.ts';
export {
  defaultShardCache,
  indexedDbShardCache,
  loadShard,
  memoryShardCache,
  shardCacheKey,
  sliceSamples,
} from './data/cache.ts';
export type { ShardCache } from './data/cache.ts';

export { createReplica, paramDiff, trainReference } from './reference.ts';
export { createDeviceTrainer, prefersDeviceTraining } from './device-train.ts';
export type { DeviceTrainer } from './device-train.ts';
export type { ParamDiff, ReferenceOptions, Replica, TrainingConfig } from './reference.ts';
export { StageOrderError, createStageRunner, distinctBytes, profileLayers } from './stage-runner.ts';
export type { StageRunner, StageRunnerOptions, StageStepResult, StepData } from './stage-runner.ts';

export {
  TFJS_GENERATED_BY,
  TFJS_WEIGHTS_FILE,
  exportFiles,
  exportTfjsModel,
  tfjsModelArtifacts,
} from './export.ts';
export type { KerasLayerJson, TfjsExport, TfjsFiles, TfjsModelJson, TfjsWeightSpec } from './export.ts';
export { loadExportedModel } from './export-load.ts';
export type { LoadedModel, WeightBytes } from './export-load.ts';
