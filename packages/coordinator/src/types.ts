import type { DeviceInfo, RunConfig, RunConfigInput, WireError } from '@peertrain/protocol';

/** Lifecycle of a peer as the coordinator sees it. */
export type PeerState = 'joining' | 'idle' | 'computing' | 'sending' | 'stalled' | 'gone';

export interface PeerView {
  peerId: string;
  state: PeerState;
  device: DeviceInfo | null;
  /** Rank in the current run, null when not assigned. */
  rank: number | null;
  role: 'worker' | 'worker+server' | null;
  shard: { start: number; count: number } | null;
  /** Round trip to the coordinator, median of recent pings. */
  rttMs: number | null;
  /** Estimated worker clock minus coordinator clock. */
  clockOffsetMs: number | null;
  lastStep: number | null;
  lastComputeMs: number | null;
  lastCommMs: number | null;
  bytesSent: number;
  framesRefused: number;
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
}

export interface EvalPoint {
  step: number;
  accuracy: number;
  loss: number;
  tMs: number;
}

export interface RunView {
  runId: number;
  phase: RunPhase;
  config: RunConfig | null;
  step: number;
  totalSteps: number;
  steps: StepPoint[];
  evals: EvalPoint[];
  error: WireError | null;
  startedAt: number | null;
}

export interface CoordinatorView {
  room: string;
  coordinatorId: string;
  peers: PeerView[];
  run: RunView;
}

/** The JSON report of a finished run (what `peertrain train --report` writes). */
export interface RunReport {
  config: RunConfig;
  finalLoss: number;
  testAccuracy: number;
  wallMs: number;
  stepMsMedian: number;
  computeMsMedian: number;
  commMsMedian: number;
  samplesPerSec: number;
  bytesSent: number;
  workers: {
    peerId: string;
    rank: number;
    role: string;
    backend: string;
    gflops: number;
    bytesSent: number;
    framesRefused: number;
    adapter?: Record<string, string | number | boolean>;
  }[];
  loss: { step: number; loss: number }[];
  evals: { step: number; accuracy: number }[];
  reference?: { maxAbsDiff: number; maxRelDiff: number; referenceLoss: number };
  errors: WireError[];
}

export type CoordinatorEvent =
  | { type: 'log'; message: string }
  | { type: 'progress'; step: number; totalSteps: number; loss: number; samplesPerSec: number }
  | { type: 'eval'; step: number; accuracy: number }
  | { type: 'done'; report: RunReport }
  | { type: 'error'; error: WireError };

/** The coordinator: admits peers of its room, assigns work, drives the step barrier, aggregates metrics. */
export interface Coordinator {
  readonly room: string;
  view(): CoordinatorView;
  /** Called on every view change (throttled by the caller if needed). */
  subscribe(listener: (view: CoordinatorView) => void): () => void;
  onEvent(listener: (event: CoordinatorEvent) => void): () => void;
  /**
   * Runs one session with the first `config.workers` idle peers (waits for them up to `waitMs`).
   * Resolves with the report; rejects with a named error (the run is then 'failed' or 'stopped').
   */
  run(
    config: RunConfigInput,
    opts?: { signal?: AbortSignal; waitMs?: number; faults?: readonly string[] },
  ): Promise<RunReport>;
  pause(): void;
  resume(): void;
  stop(reason?: string): void;
  dispose(): Promise<void>;
}
