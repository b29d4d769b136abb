import { DATASETS, runShape } from '@peertrain/protocol';
import type { RunConfig, ToWorker } from '@peertrain/protocol';
import { planShards } from '@peertrain/planner';
import type { PeerRecord } from '../membership.ts';
import type { MethodReportFields } from '../report.ts';
import type { PeerView, PipelineView, StageAssignment } from '../types.ts';
import type { StepDoneMsg } from '../intake.ts';
import type { PipelinePlan } from '../planning.ts';

/*
 * A training method's coordinator side. The run driver is the same for every method: it waits for
 * peers, asks the method to prepare, assigns what the method says, grants steps `barrierWindow`
 * ahead, and builds the report with the method's fields. A method is a file here plus a line in
 * registry.ts.
 */

export type AssignMsg = Extract<ToWorker, { type: 'assign' }>;

/** What one rank is told to do. */
export interface RankAssignment {
  role: NonNullable<PeerView['role']>;
  shard: { start: number; count: number };
  stage: StageAssignment | null;
  /** The assign message sent to the peer. */
  message: AssignMsg;
  /** The peer's track name in the trace. */
  traceName: string;
}

/** What prepare() gets: the run and its chosen peers by rank. */
export interface MethodContext {
  runId: number;
  config: RunConfig;
  /** Peers by rank (the oldest idle peers). */
  peers: readonly PeerRecord[];
  /** Pipeline methods: profile replica 0's devices and cut the model (planning.ts). */
  planPipeline(devices: readonly PeerRecord[]): Promise<PipelinePlan>;
}

/** A prepared run of a method: assignments and the hooks the driver calls. */
export interface MethodRun {
  /** By rank. */
  assignments: RankAssignment[];
  /** The live view's pipeline block (null: the method has none). */
  pipelineView: PipelineView | null;
  /** Peers whose spans give the measured bubble, and how many stages they form (null: none). */
  bubble: { peers: ReadonlySet<string>; stages: number } | null;
  /**
   * Steps workers may run ahead of the slowest finished step (hides the barrier's round trip).
   * Absent: STEP_WINDOW. A method whose workers must run further alone says so here: local steps
   * two rounds (2 innerSteps + 1), an asynchronous server its staleness + 1.
   */
  barrierWindow?: number;
  /**
   * Elastic runs: the step an epoch that has to redo `step` starts at (absent: `step` itself). A
   * method whose workers meet only at round ends says where its round starts.
   */
  epochBoundary?: (step: number) => number;
  /**
   * Elastic runs of a method whose workers redo nothing (ps-async): a lost worker is dropped (the
   * barrier stops waiting for it) and no joiner is admitted; losing a rank that is not `expendable`
   * (a server) fails the run.
   */
  elasticDrop?: { expendable: (rank: number) => boolean };
  /** Each step report, as it arrives (before the barrier counts it). */
  onStepDone?(rank: number, msg: StepDoneMsg): void;
  /** The method's own report fields, from the live view's final pipeline block. */
  reportFields(pv: PipelineView | null): Partial<MethodReportFields>;
}

export interface CoordinatorMethod {
  /** The registry key (methodName). */
  readonly name: string;
  prepare(ctx: MethodContext): Promise<MethodRun>;
}

/**
 * The default barrier window: four steps in flight. With two, a lone worker at batch 96 on the MLP
 * (9 ms of compute) spent a median 7.6 ms a step waiting for its next grant, whose round trip runs
 * through the dashboard tab; with four, 0.7 ms (README "Live views"). Synchronous methods meet in
 * their exchange anyway; the window only lets a rank start a step before the coordinator has
 * counted the last, and a pause takes effect after the steps already granted.
 */
export const STEP_WINDOW = 4;

/** Pipelines' window: two steps in flight (methods/pipeline.ts). */
export const PIPELINE_WINDOW = 2;

/** The barrier window the driver uses for a prepared method (its own, else STEP_WINDOW). */
export function barrierWindowOf(mr: Pick<MethodRun, 'barrierWindow'>): number {
  return Math.max(1, mr.barrierWindow ?? STEP_WINDOW);
}

/** Equal disjoint shards of the training set, one per data-parallel replica. */
export function replicaShards(config: RunConfig): { start: number; count: number }[] {
  return planShards(DATASETS[config.dataset].train, runShape(config).replicas, config.shards);
}

/** The assign message's common fields. */
export function baseAssign(
  ctx: MethodContext,
  rank: number,
  shards: { start: number; count: number }[],
  shard: { start: number; count: number },
): Omit<AssignMsg, 'role'> {
  return {
    type: 'assign',
    runId: ctx.runId,
    rank,
    peers: ctx.peers.map((p) => p.peerId),
    shard,
    allShards: shards,
    config: ctx.config,
  };
}
