export {
  PHASE_ALL_GATHER,
  PHASE_REDUCE_SCATTER,
  chunkBounds,
  ringAllReduce,
  ringElemsSent,
  ringRank,
  ringTag,
  ringTagSpan,
} from './ring.ts';
export type { AllReduceOptions, AllReduceStats, RingOptions, RingPhase, RingPhaseName } from './ring.ts';
export { allReduceMean, allReducePath, allReduceSum } from './mean.ts';
export type { MeanOptions } from './mean.ts';
export { createParameterServer, evenShards, psWorkerStep, validateShards } from './ps.ts';
export type { ParameterServer, ParameterServerOptions, PsShard, PsWorkerOptions } from './ps.ts';
export { createAsyncParameterServer } from './ps-async.ts';
export type { AsyncPsOptions, AsyncPsPeer } from './ps-async.ts';
export { f32FromMessage, f32ToBytes } from './f32.ts';
export type { TrafficStats } from './f32.ts';
export { compressedAllReduce, compressedTagSpan } from './compressed.ts';
export type { CompressedAllReduceOptions } from './compressed.ts';
export { HOP_WORTH_BYTES, allReduceAlgorithm, directAllReduce } from './direct.ts';
export type { AllReduceAlgorithm, DirectOptions } from './direct.ts';
export { PAIRWISE_MAX_PEERS, PAIRWISE_TAG_SPAN, pairwiseAllReduce } from './pairwise.ts';
