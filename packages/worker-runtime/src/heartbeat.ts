// The worker's side of heartbeats (the coordinator's is coordinator/heartbeats.ts). Once welcomed,
// a worker sends `heartbeat` every HEARTBEAT_EVERY_MS; a run member the coordinator hears nothing
// from for the run's heartbeatTimeoutMs is dropped (a frozen tab: its timers and callbacks stop,
// its links stay open). When the tab thaws and speaks, the coordinator answers `dropped`: the
// worker aborts whatever it had in flight with DroppedError, forgets its run and says hello again.
import { HEARTBEAT_EVERY_MS } from '@peertrain/protocol';
import type { WorkerCore } from './core.ts';

/** Interval timers, injected so tests can drive them (defaults: the platform's). */
export interface WorkerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const platformTimers: WorkerTimers = {
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
};

/** The coordinator dropped this worker (it was silent too long): the run it had is gone. */
export class DroppedError extends Error {
  override readonly name = 'DroppedError';
  constructor(reason: string) {
    super(`dropped by the coordinator: ${reason}`);
  }
}

/**
 * Sends a heartbeat every `everyMs` until the returned stop is called or the worker's lifetime
 * ends; starting again replaces the previous interval.
 */
export class Heartbeat {
  private handle: unknown = null;
  /** When the previous beat's timer ran, and when that beat was handed to the link (null: not yet). */
  private lastTick: number | null = null;
  private lastSent: number | null = null;

  constructor(
    private readonly core: WorkerCore,
    private readonly timers: WorkerTimers,
    private readonly everyMs = HEARTBEAT_EVERY_MS,
  ) {
    core.lifetime.addEventListener('abort', () => this.stop(), { once: true });
  }

  start(): void {
    this.stop();
    if (this.core.lifetime.aborted) return;
    this.lastTick = null;
    this.handle = this.timers.setInterval(() => this.beat(), this.everyMs);
  }

  private beat(): void {
    const { core } = this;
    const t = core.now();
    const last = this.lastTick;
    const seen =
      last === null
        ? {}
        : { gapMs: Math.max(0, t - last), sendWaitMs: Math.max(0, (this.lastSent ?? t) - last) };
    this.lastTick = t;
    this.lastSent = null;
    core.mesh.sendControl(core.coordinatorId, { type: 'heartbeat', tWorker: t, ...seen }).then(
      () => {
        if (this.lastTick === t) this.lastSent = core.now();
      },
      () => undefined, // the coordinator link is gone; onPeer('close') reports it
    );
  }

  stop(): void {
    if (this.handle === null) return;
    this.timers.clearInterval(this.handle);
    this.handle = null;
  }
}
