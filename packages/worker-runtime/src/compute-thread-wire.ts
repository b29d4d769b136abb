// The messages between a page and its compute thread (compute-thread.ts, compute-thread-host.ts).
// Objects in the thread (the Compute, its sessions, their stages and device steps) are named by
// handles the page picks; 0 is the Compute. Calls that return nothing and cannot wait (dispose,
// reset, apply, creating a stage) are posted without a reply; the thread runs messages in order,
// so a later call sees their effect, and one that failed fails the next call on its handle.
import { toWireError } from '@peertrain/protocol';
import type { BackendName, DeviceInfo } from '@peertrain/protocol';
import type { EngineMemory } from './compute.ts';

/** What the thread needs to start its engine (engineCompute's options, as plain data). */
export interface ThreadInit {
  backend: 'auto' | BackendName;
  /** Absolute URL of the MNIST file (a worker has no page to resolve a relative one against). */
  mnistUrl: string;
}

/** A thread's error, rebuilt on the page with the same name and message. */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
}

/** The Compute's handle. */
export const COMPUTE_HANDLE = 0;

export type ToThread =
  | { t: 'init'; init: ThreadInit }
  /** A call with a reply; `handle`: where the thread keeps the object it makes (prepare). */
  | { t: 'call'; id: number; target: number; method: string; args: unknown[]; handle?: number }
  /** A call without a reply; `handle` as above (stage, deviceSteps). */
  | { t: 'post'; target: number; method: string; args: unknown[]; handle?: number }
  | { t: 'abort'; id: number };

export type FromThread =
  | { t: 'ready'; device: DeviceInfo; memory: EngineMemory }
  | { t: 'failed'; error: ThreadError }
  | { t: 'done'; id: number; value: unknown; memory: EngineMemory }
  | { t: 'error'; id: number; error: ThreadError; memory: EngineMemory }
  /** A gradients call's backward hook (BackwardHooks), in the order the engine called it. */
  | {
      t: 'hook';
      id: number;
      layer: number;
      grads?: { offset: number; values: Float32Array };
      /** When the engine called the hook: the thread's epochNow(). */
      at: number;
    };

/** What the thread tells the page about a session it prepared (the synchronous parts of TrainSession). */
export interface PreparedSession {
  paramCount: number;
  paramShapes: number[][];
  initParams: Float32Array;
  layerCount: number;
  /** paramRange of every [first, end) range of layers, keyed `${first}:${end}`. */
  ranges: Record<string, { offset: number; count: number }>;
  /** The session answers gradientsOf. */
  gradientsOf: boolean;
  deviceSteps: boolean;
}

/** protocol's toWireError, with the stack (the page shows where in the thread it failed). */
export function toThreadError(err: unknown): ThreadError {
  const { name, message } = toWireError(err);
  return { name, message, ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) };
}

/**
 * Milliseconds since the Unix epoch at high resolution: the clock the page and its compute thread
 * share (each one's performance.now() counts from its own timeOrigin).
 */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** An epochNow() reading on this thread's performance.now() clock. */
export function fromEpoch(epochMs: number): number {
  return epochMs - performance.timeOrigin;
}
