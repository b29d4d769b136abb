export { createWorkerRuntime } from './runtime.ts';
export type { WorkerRuntimeInit } from './runtime.ts';
export { engineCompute } from './engine-compute.ts';
export type { EngineComputeOptions } from './engine-compute.ts';
export type { Compute, EngineMemory, PrepareRun, TrainSession } from './compute.ts';
export type { WorkerPhase, WorkerRuntime, WorkerStatus } from './types.ts';
