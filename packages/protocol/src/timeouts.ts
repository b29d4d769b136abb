/**
 * Every named phase timeout, in one place. `phase` is what PhaseTimeoutError says when it fires
 * (the coordinator's step barrier adds the step's number); `ms` is the default. Where each is
 * enforced:
 *
 * - join:          worker, one attempt to reach the coordinator and be welcomed (worker-runtime
 *                  runtime.ts); a worker's first join shows the attempt's error and tries again
 * - connect:       worker, opening a run's peer links (worker-runtime links.ts openLinks)
 * - ready:         coordinator, assignment until every rank is ready (driver train)
 * - step:          coordinator, the step barrier: every member reports the step (driver train)
 * - allreduceHop:  worker, one receive of a gradient exchange: the ring, diloco's outer step, the
 *                  parameter server's push and pull, a hybrid stage group (methods/*.ts, elastic.ts)
 * - stageTransfer: worker, one activation or gradient receive between pipeline stages (methods/pipeline.ts)
 * - checkpoint:    coordinator, the holder's state after a checkpoint step (checkpoints.ts)
 * - joinState:     worker, streaming the state to (or from) a peer joining a run (elastic.ts)
 * - relink:        worker, re-forming the ring over a new epoch's members (elastic.ts)
 * - coordinatorReturn: worker, its coordinator's link closed (the dashboard tab reloaded): how long
 *                  it keeps dialling the coordinator's id to say hello again (worker-runtime
 *                  coordinator-return.ts); past it the worker shows PhaseTimeoutError
 * - heartbeat:     coordinator, a run member silent this long is lost with cause 'heartbeat'
 *                  (heartbeats.ts; per run: config.heartbeatTimeoutMs, CLI --heartbeat-timeout)
 *
 * Hops and transfers wait for the slowest peer's compute (and the leader's evaluation between
 * steps), so they are generous; a frozen peer is caught by the heartbeat well before them.
 */
export const PHASE_TIMEOUTS = {
  join: { phase: 'joining the room', ms: 30_000 },
  connect: { phase: 'connecting to peers', ms: 60_000 },
  ready: { phase: 'workers loading data and connecting', ms: 120_000 },
  step: { phase: 'step', ms: 120_000 },
  allreduceHop: { phase: 'all-reduce hop', ms: 60_000 },
  stageTransfer: { phase: 'stage send/recv', ms: 120_000 },
  checkpoint: { phase: 'checkpoint', ms: 120_000 },
  joinState: { phase: 'streaming the state to a joiner', ms: 60_000 },
  relink: { phase: 're-forming the ring', ms: 30_000 },
  heartbeat: { phase: 'heartbeat', ms: 10_000 },
  // A reload takes seconds; a person closing and reopening the dashboard, a minute or two.
  coordinatorReturn: { phase: 'waiting for the coordinator to come back', ms: 300_000 },
} as const satisfies Record<string, PhaseTimeout>;

export interface PhaseTimeout {
  phase: string;
  ms: number;
}

export type PhaseName = keyof typeof PHASE_TIMEOUTS;

/** How often a welcomed worker sends a heartbeat (well under any heartbeat timeout: >= 500 ms). */
export const HEARTBEAT_EVERY_MS = 1000;
