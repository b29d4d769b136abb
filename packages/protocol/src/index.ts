export { PROTOCOL_VERSION } from './version.ts';
export { HEARTBEAT_EVERY_MS, PHASE_TIMEOUTS } from './timeouts.ts';
export type { PhaseName, PhaseTimeout } from './timeouts.ts';
export {
  BackendError,
  CheckpointError,
  ConfigError,
  IdTakenError,
  PeerLostError,
  PhaseTimeoutError,
  ProtocolError,
  TransportError,
  toWireError,
} from './errors.ts';
export type { ProtocolErrorCode, WireError } from './errors.ts';
export { LayerSpecSchema, ModelSpecSchema, zeroGatedOutput } from './model.ts';
export type { LayerSpec, ModelSpec } from './model.ts';
export {
  BACKENDS,
  ALL_REDUCE_ALGORITHMS,
  DATASETS,
  DEFAULT_BATCH,
  DEFAULT_MICRO_BATCHES,
  ELASTIC_POLICIES,
  OptimizerSchema,
  RunConfigSchema,
  SCHEDULES,
  STRATEGIES,
  microBatchRange,
  parseRunConfig,
  checkpointable,
  runShape,
} from './config.ts';
export type {
  BackendName,
  DatasetName,
  ElasticPolicy,
  OptimizerConfig,
  RunConfig,
  RunConfigInput,
  ScheduleKind,
  Strategy,
} from './config.ts';
export {
  BackendProbeSchema,
  DeviceInfoSchema,
  LayerCostSchema,
  RoleSchema,
  ShardSchema,
  StageRangeSchema,
  ToCoordinatorSchema,
  MAX_PROBE_BYTES,
  MAX_REPORTS_PER_MESSAGE,
  MemoryReportSchema,
  ToWorkerSchema,
  WireSpanSchema,
  SPAN_KINDS,
  LANES,
  LINK_KINDS,
  LinkCountsSchema,
  linkCountsText,
  parseControl,
  parseToCoordinator,
  parseToWorker,
} from './messages.ts';
export type {
  BackendProbe,
  ControlMessage,
  DeviceInfo,
  LayerCost,
  MemoryReport,
  Role,
  Shard,
  StageRange,
  ToCoordinator,
  ToWorker,
  WireSpan,
  SpanKind,
  Lane,
  LinkCounts,
  LinkKind,
} from './messages.ts';
export {
  DTYPES,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  MAX_RANK,
  MIN_FRAME_BYTES,
  Reassembler,
  bytesPerElement,
  decodeFrame,
  encodeMessage,
} from './frame.ts';
export type { DType, EncodeOptions, Frame, ReassemblerLimits, TensorMessage, WireMessage } from './frame.ts';
export {
  COMPUTE_PLACES,
  DEFAULT_COMPUTE_PLACE,
  coordinatorPeerId,
  PROBE_TAG,
  finalParamsKey,
  isPeerOfRoom,
  probeKey,
  randomId,
  validateRoom,
  workerPeerId,
} from './rooms.ts';
export type { ComputePlace } from './rooms.ts';
export {
  CoordinatorEventSchema,
  PipelineReportSchema,
  activationFormat,
  RunReportSchema,
  StalenessReportSchema,
  TargetReportSchema,
  parseCoordinatorEvent,
  parseRunReport,
} from './events.ts';
export type { CoordinatorEvent, PipelineReport, RunReport, StalenessReport, TargetReport } from './events.ts';
export { ChromeTraceSchema, parseChromeTrace } from './trace.ts';
export type { ChromeTrace, ChromeTraceEvent } from './trace.ts';
export { MODEL_PRESETS, modelPreset } from './presets.ts';
export type { ModelPreset } from './presets.ts';
export { parsePartition, partitionIssues } from './partition.ts';
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  CheckpointManifestSchema,
  checkResumable,
  checkpointDue,
  checkpointFromBase64,
  checkpointKey,
  decodeCheckpoint,
  encodeCheckpoint,
  joinState,
  optimizerSlotLengths,
  paramCountOfState,
  resumeKey,
  splitState,
  stateLength,
} from './checkpoint.ts';
export type { Checkpoint, CheckpointManifest } from './checkpoint.ts';
export { stageRestoreKey, stageSnapshotKey } from './stage-snapshot.ts';
export { sha256Hex } from './sha256.ts';
