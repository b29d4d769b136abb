import { asError } from '@peertrain/base';
import type { ToCoordinator } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type { Compute, EngineMemory } from './compute.ts';
import type { Assign } from './methods/index.ts';
import type { WorkerStatus } from './types.ts';

/** What the runtime's parts (runtime.ts, control.ts, run-loop.ts) share for one worker's life. */
export interface WorkerCore {
  readonly mesh: Mesh;
  readonly coordinatorId: string;
  readonly now: () => number;
  /** Aborted when the worker leaves (or its outer signal fires): ends every run and wait. */
  readonly lifetime: AbortSignal;
  readonly connectTimeoutMs: number;
  /** The engine, once probed. */
  compute: Compute | null;
  /** The run assigned now, if any. */
  current: RunState | null;
  status(): WorkerStatus;
  /** Patches the status (with the mesh's byte counters) and tells the page's listeners. */
  update(patch: Partial<WorkerStatus>): void;
  /** Sends to the coordinator without waiting; a lost link is reported by onPeer('close'). */
  tell(msg: ToCoordinator): void;
}

/** One assigned run: commands from the coordinator queue here and the loop drains them in order. */
export interface RunState {
  assign: Assign;
  abort: AbortController;
  grantedUpTo: number;
  completed: number;
  /** Steps the run takes: config.steps, or fewer once rank 0's evaluation reached the target accuracy. */
  endStep: number;
  pendingEvals: number[];
  /** An evaluation fell due (every evalEvery steps) and waits for the method's evalReady. */
  evalOwed: boolean;
  pendingReference: boolean;
  /** The loop's sleep (waitForWork), woken by poke. */
  wake: (() => void) | null;
  /**
   * A poke that came while the loop was not asleep (it was stepping): its next sleep returns at
   * once and the loop looks again. Without it a wake-up that needs the loop to look at state it
   * does not check before sleeping (an elastic epoch's rewind) would be lost.
   */
  poked: boolean;
  /** What the run holds, for the memory report: parameters (model or stage), last step's activation peak. */
  paramBytes: number;
  peakActivationBytes: number | null;
  /** Pipeline stage: micro-batches whose activations it holds right now (1F1B keeps at most P). */
  savedActivations: number | null;
  /** Fault injection ('slow'): each step's computation is stretched to this many times its time. */
  slowFactor: number;
  /**
   * Bytes this worker had sent to other workers when the run's links were open: stepDone reports
   * what the run sent since (the mesh counts since the tab opened, and a tab serves many runs).
   */
  bytesAtStart: number;
  /**
   * When the worker's last step ended (its clock), null before the first: the next stepDone's
   * idleMs is the time from there to that step's start, so a rank's steps tile its training time.
   */
  lastStepEndMs: number | null;
  /**
   * Time since the last step spent on what is not training (evaluations, the reference run): left
   * out of the next step's idleMs, so a rank's compute utilization is over its training time.
   */
  asideMs: number;
}

export function newRunState(assign: Assign): RunState {
  return {
    assign,
    abort: new AbortController(),
    grantedUpTo: -1,
    completed: 0,
    endStep: assign.config.steps,
    pendingEvals: [],
    evalOwed: false,
    pendingReference: false,
    wake: null,
    poked: false,
    paramBytes: 0,
    peakActivationBytes: null,
    savedActivations: null,
    slowFactor: 1,
    bytesAtStart: 0,
    lastStepEndMs: null,
    asideMs: 0,
  };
}

/**
 * Wakes the run's loop (a grant, an eval, the reference or an epoch arrived): now if it sleeps,
 * else its next sleep returns at once.
 */
export function poke(run: RunState): void {
  const w = run.wake;
  run.wake = null;
  if (w) w();
  else run.poked = true;
}

/**
 * Sleeps until the coordinator grants a step, asks for an eval or the reference, sends an epoch, or
 * the run is aborted; at once when a poke came since the last sleep. The abort listener goes with
 * the wake so idle waits do not pile up.
 */
export function waitForWork(run: RunState, signal: AbortSignal): Promise<void> {
  if (run.poked) {
    run.poked = false;
    return Promise.resolve();
  }
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(asError(signal.reason));
    run.wake = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type PongMemory = NonNullable<Extract<ToCoordinator, { type: 'pong' }>['memory']>;

/** The engine's tf.memory() and what the current run holds; nothing before the engine is up. */
export function memoryReport(m: EngineMemory | null, run: RunState | null): { memory?: PongMemory } {
  if (!m) return {};
  return {
    memory: {
      ...m,
      ...(run && run.paramBytes > 0 ? { paramBytes: run.paramBytes } : {}),
      ...(run?.peakActivationBytes != null ? { peakActivationBytes: run.peakActivationBytes } : {}),
      ...(run?.savedActivations != null ? { savedActivations: run.savedActivations } : {}),
    },
  };
}
