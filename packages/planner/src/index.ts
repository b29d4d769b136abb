export { planShards } from './shards.ts';
export { PlanError, evaluatePartition, parsePartition, planStages } from './stages.ts';
export type {
  LayerProfile,
  PlanErrorDetail,
  PlannedStage,
  StageDevice,
  StagePlan,
  StagePlanOptions,
  StageRange,
} from './stages.ts';
