export { createCoordinator } from './coordinator.ts';
export { median } from './intake.ts';
export type { CoordinatorInit, Timers } from './coordinator.ts';
export type {
  Coordinator,
  CoordinatorEvent,
  CoordinatorView,
  EvalPoint,
  PeerMemory,
  PeerState,
  PeerView,
  PipelineReport,
  PipelineView,
  PlanPreview,
  RunPhase,
  RunReport,
  RunView,
  StageAssignment,
  StepPoint,
  TimelineSpan,
  TrainedModel,
} from './types.ts';
