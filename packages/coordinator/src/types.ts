import type {
  Checkpoint,
  DeviceInfo,
  LayerCost,
  LinkCounts,
  RunConfig,
  RunConfigInput,
  ScheduleKind,
  WireError,
} from '@peertrain/protocol';
import type { StagePlan, StagePlanOptions } from '@peertrain/planner';
import type { Span } from '@peertrain/telemetry';
import type { ChromeTrace, CoordinatorEvent, RunReport } from '@peertrain/protocol';

/** Lifecycle of a peer as the coordinator sees it. */
export type PeerState = 'joining' | 'idle' | 'computing' | 'sending' | 'waiting' | 'stalled' | 'gone';

export interface PeerView {
  peerId: string;
  state: PeerState;
  device: DeviceInfo | null;
  /** Rank in the current run, null when not assigned. */
  rank: number | null;
  role: 'worker' | 'worker+server' | 'stage' | null;
  shard: { start: number; count: number } | null;
  /** Pipeline / hybrid: the stage this peer holds. */
  stage: StageAssignment | null;
  /** Round trip to the coordinator, median of recent pings. */
  rttMs: number | null;
  /** Estimated worker clock minus coordinator clock. */
  clockOffsetMs: number | null;
  lastStep: number | null;
  lastComputeMs: number | null;
  lastCommMs: number | null;
  bytesSent: number;
  framesRefused: number;
  /** Its links to the run's peers by kind (WebRTC, tab links), as it said when ready. */
  links?: LinkCounts;
  /** The worker's engine memory, from its latest pong (null until it reports). */
  memory: PeerMemory | null;
  /** Coordinator -> worker bandwidth from the latest probe, bytes/s (null until measured). */
  bandwidthBytesPerSec: number | null;
  /** Elastic runs: the step boundary at which this peer joined the run in progress (absent: from the start). */
  joinedAtStep?: number | undefined;
}

/** What a peer's engine holds: TensorFlow.js tf.memory() plus what its runtime knows. */
export interface PeerMemory {
  numBytes: number;
  numTensors: number;
  numBytesInGPU?: number | undefined;
  unreliable?: boolean | undefined;
  /** Parameters held (the model, or the stage's layers), bytes. */
  paramBytes?: number | undefined;
  /** Pipeline: activations kept for backward, and their peak bytes in the last step. */
  savedActivations?: number | undefined;
  peakActivationBytes?: number | undefined;
}

/** Lifecycle of a run: idle -> preparing -> running <-> paused -> (finishing) -> done | failed | stopped. */
export type RunPhase =
  'idle' | 'preparing' | 'running' | 'paused' | 'finishing' | 'done' | 'failed' | 'stopped';

export interface StepPoint {
  step: number;
  /** Mean loss over workers at this step. */
  loss: number;
  /** Coordinator-clock time (ms since run start) when the last worker finished the step. */
  tMs: number;
  samplesPerSec: number;
  computeMs: number;
  commMs: number;
  /**
   * Wall time of the step, ms: the ranks' mean of their own (computeMs + commMs + idleMs), or where
   * a report lacks idleMs (a rank's first step) the coordinator's time since the previous step finished.
   */
  stepMs?: number;
  /** Bytes every peer sent to other peers during this step (summed). */
  bytes?: number;
  /**
   * Each rank's compute time in this step, ms (index = rank): utilization = computeMs / stepMs.
   * (The three are optional only so older fixtures stay valid; the coordinator always fills them.)
   */
  computeMsByRank?: number[];
}

export interface EvalPoint {
  step: number;
  accuracy: number;
  loss: number;
  tMs: number;
}

/** Pipeline stage `stage` of replica `replica` holds layers [first, end). */
export interface StageAssignment {
  stage: number;
  replica: number;
  first: number;
  end: number;
  /** Interleaved: every chunk [first, end) the peer holds, in order (first and end are the first's). */
  chunks?: { first: number; end: number }[];
}

/**
 * A span on the coordinator's clock (ms, the coordinator's performance.now): the worker's span
 * shifted by that worker's clock offset. `peer` is the other end of a send or recv.
 */
export type TimelineSpan = Span & { peer?: string };

export interface PipelineView {
  stages: number;
  replicas: number;
  microBatches: number;
  schedule: ScheduleKind;
  /** Model chunks per peer (interleaved; 1 otherwise). */
  virtualStages?: number;
  recompute: boolean;
  /** Who holds what, replica-major (index = rank). */
  assignments: (StageAssignment & { peerId: string })[];
  /** The planner's cost model for the partition run (planned or given), ms per step; null before planning. */
  predictedStepMs: number | null;
  /** The schedule's own bound (packages/schedules' bubbleTheory): 1F1B's is (P - 1) / (M + P - 1). */
  bubbleTheory: number;
  /** Median over every step measured so far after the warm-up (null before the first). */
  bubbleMeasured: number | null;
  /**
   * Measured bubble per step (idle fraction of the stages between the first forward and the last
   * backward), the last BUBBLE_HISTORY steps.
   */
  bubbles: { step: number; bubble: number }[];
  /**
   * Elastic pipelines: the newest step after which every stage's snapshot arrived, the step a stage
   * lost now would be redone from (0: the seeded start). Absent without elasticity.
   */
  snapshotStep?: number;
}

export interface RunView {
  runId: number;
  phase: RunPhase;
  config: RunConfig | null;
  step: number;
  totalSteps: number;
  /**
   * Every step of the run so far, in order. Append-only and shared: the coordinator appends to one
   * array for the whole run (copying it per step cost O(steps) a step: 3 ms at 100,000 steps), so
   * the views of a run hold the same array, which may have grown since a view was taken; read its
   * length, not its identity, to see a new step. A new run starts a new array.
   */
  steps: StepPoint[];
  evals: EvalPoint[];
  error: WireError | null;
  startedAt: number | null;
  /** Spans of the last TIMELINE_STEPS steps, every peer, on the coordinator's clock. */
  spans: TimelineSpan[];
  pipeline: PipelineView | null;
}

/** The view of no run yet (or of run `runId` before it starts). */
export function emptyRun(runId: number): RunView {
  return {
    runId,
    phase: 'idle',
    config: null,
    step: 0,
    totalSteps: 0,
    steps: [],
    evals: [],
    error: null,
    startedAt: null,
    spans: [],
    pipeline: null,
  };
}

export interface CoordinatorView {
  room: string;
  coordinatorId: string;
  peers: PeerView[];
  run: RunView;
}

export interface TrainedModel {
  runId: number;
  /** The model preset (engine's modelPreset(name) gives the layers). */
  model: RunConfig['model'];
  /** Flat float32 parameters in the model's layout. */
  params: Float32Array;
  /** Test accuracy the run measured with these parameters. */
  testAccuracy: number;
}

// The events and the run report are wire shapes: defined once, with their zod schemas, in
// protocol (packages/protocol/src/events.ts), which the harness parses them with.
export type {
  CoordinatorEvent,
  PipelineReport,
  RunReport,
  StalenessReport,
  TargetReport,
} from '@peertrain/protocol';

/**
 * The planner's proposal for a pipeline (replica 0's devices), taken before a run: everything the
 * dashboard needs to re-evaluate another partition locally with the planner's `evaluatePartition`
 * (layers, devices, options) and the proposal itself.
 */
export interface PlanPreview {
  /** The model's layers as profiled on the fastest device (per micro-batch costs, names). */
  layers: LayerCost[];
  /** Replica 0's devices in stage order (stage s runs on devices[s]). */
  devices: {
    peerId: string;
    /** Relative speed from the device's own profile (micro-batches per second through the model). */
    speed: number;
    /** Memory the planner lets a stage use on this device. */
    memoryBytes: number;
  }[];
  /** Options the plan was made with (pass them to evaluatePartition for the same model). */
  options: Required<Pick<StagePlanOptions, 'microBatches' | 'referenceGflops' | 'bytesPerMs'>>;
  plan: StagePlan;
}

/** The coordinator: admits peers of its room, assigns work, drives the step barrier, aggregates metrics. */
export interface Coordinator {
  readonly room: string;
  view(): CoordinatorView;
  /** Called on every view change (throttled by the caller if needed). */
  subscribe(listener: (view: CoordinatorView) => void): () => void;
  onEvent(listener: (event: CoordinatorEvent) => void): () => void;
  /** Every span of the current (or last) run as Chrome trace JSON, one process per peer (opens in Perfetto). */
  trace(): ChromeTrace;
  /** The last finished run's trained parameters, or null. */
  trainedModel(): TrainedModel | null;
  /**
   * Runs one session with the first `config.workers` idle peers (waits for them up to `waitMs`).
   * Resolves with the report; rejects with a named error (the run is then 'failed' or 'stopped').
   */
  run(
    config: RunConfigInput,
    opts?: {
      signal?: AbortSignal;
      waitMs?: number;
      faults?: readonly string[];
      resume?: Checkpoint;
      /** Peer ids by rank to keep where they are idle (a resumed run's members). */
      ranks?: readonly string[];
    },
  ): Promise<RunReport>;
  /**
   * Profiles the layers on the idle peers that would be replica 0 of a run of `config` (one device
   * at a time, as a run does) and returns the planner's proposal. Rejects with ConfigError while a
   * run is active or when fewer idle peers than stages (after `waitMs`, default 0), PlanError when
   * no plan fits, AbortError on abort (late profile results are then ignored).
   */
  plan(config: RunConfigInput, opts?: { signal?: AbortSignal; waitMs?: number }): Promise<PlanPreview>;
  pause(): void;
  resume(): void;
  stop(reason?: string): void;
  dispose(): Promise<void>;
}
