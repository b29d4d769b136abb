export { planShards } from './shards.ts';
export { PlanError, evaluatePartition, planStages } from './stages.ts';
export type {
  LayerProfile,
  PlanErrorDetail,
  PlannedStage,
  StageDevice,
  StagePlan,
  StagePlanOptions,
  StageRange,
} from './stages.ts';
