export { createCoordinator, median } from './coordinator.ts';
export type { CoordinatorInit, Timers } from './coordinator.ts';
export type {
  Coordinator,
  CoordinatorEvent,
  CoordinatorView,
  EvalPoint,
  PeerState,
  PeerView,
  RunPhase,
  RunReport,
  RunView,
  StepPoint,
} from './types.ts';
