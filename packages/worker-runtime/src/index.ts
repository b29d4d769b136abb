export { createWorkerRuntime } from './runtime.ts';
export type { WorkerRuntimeInit } from './runtime.ts';
export { engineCompute } from './engine-compute.ts';
export { ComputeThreadError, threadedCompute } from './compute-thread.ts';
export type { ThreadPort } from './compute-thread.ts';
export type { ThreadInit } from './compute-thread-wire.ts';
export type { EngineComputeOptions } from './engine-compute.ts';
export type { Compute, EngineMemory, PrepareRun, TrainSession } from './compute.ts';
export type { WorkerPhase, WorkerRuntime, WorkerStatus } from './types.ts';
export { UnknownMethodError, methodName, workerMethod } from './methods/index.ts';
export type {
  MethodContext,
  MethodLinks,
  MethodName,
  MethodRun,
  Placement,
  StepOutcome,
  WorkerMethod,
} from './methods/index.ts';
