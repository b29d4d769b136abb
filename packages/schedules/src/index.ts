export {
  ALL_SCHEDULE_NAMES,
  SCHEDULE_NAMES,
  formatOps,
  isAnySchedule,
  isSchedule,
  messageKey,
  opChunk,
  opMicroBatch,
  peakInFlight,
} from './ops.ts';
export type {
  AnyOp,
  AnyOpKind,
  AnyScheduleName,
  AnyStageOps,
  BackwardInputOp,
  BackwardOp,
  BackwardWeightOp,
  ForwardOp,
  Op,
  OpKind,
  OptimizerOp,
  RecvActOp,
  RecvGradOp,
  RecvOp,
  ScheduleName,
  SendActOp,
  SendGradOp,
  SendOp,
  StageOps,
} from './ops.ts';
export { ConfigError } from '@peertrain/protocol';
export { bubbleTheory, checkShape, schedule } from './schedules.ts';
export type { ScheduleOptions } from './schedules.ts';
export { interleavedOrder } from './interleaved.ts';
export { ScheduleError, assertSchedule, scheduleIssues } from './check.ts';
export { ScheduleDeadlockError, simulate } from './simulate.ts';
export type { BlockedOp, OpCosts, Simulation, Span } from './simulate.ts';
