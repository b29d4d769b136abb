export { PROTOCOL_VERSION } from './version.ts';
export {
  AbortError,
  BackendError,
  ConfigError,
  PeerLostError,
  PhaseTimeoutError,
  ProtocolError,
  TransportError,
  VersionMismatchError,
  throwIfAborted,
  toWireError,
} from './errors.ts';
export type { ProtocolErrorCode, WireError } from './errors.ts';
export { LayerSpecSchema, ModelSpecSchema } from './model.ts';
export type { LayerSpec, ModelSpec } from './model.ts';
export { BACKENDS, OptimizerSchema, RunConfigSchema, parseRunConfig } from './config.ts';
export type { BackendName, OptimizerConfig, RunConfig, RunConfigInput } from './config.ts';
export {
  BackendProbeSchema,
  DeviceInfoSchema,
  PeerControlSchema,
  RoleSchema,
  ShardSchema,
  ToCoordinatorSchema,
  ToWorkerSchema,
  parseControl,
  parsePeerControl,
  parseToCoordinator,
  parseToWorker,
} from './messages.ts';
export type {
  BackendProbe,
  ControlMessage,
  DeviceInfo,
  PeerControl,
  Role,
  Shard,
  ToCoordinator,
  ToWorker,
} from './messages.ts';
// Binary frames (frame.ts) are exported here once written:
// export { DTYPES, decodeFrame, encodeMessage, Reassembler, ... } from './frame.ts';
export { coordinatorPeerId, isPeerOfRoom, randomId, validateRoom, workerPeerId } from './rooms.ts';
