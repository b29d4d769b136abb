export { SCHEDULE_NAMES, formatOps, isSchedule, messageKey, opMicroBatch, peakInFlight } from './ops.ts';
export type {
  BackwardOp,
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
export { ScheduleError, assertSchedule, scheduleIssues } from './check.ts';
export { ScheduleDeadlockError, simulate } from './simulate.ts';
export type { BlockedOp, OpCosts, Simulation, Span } from './simulate.ts';
