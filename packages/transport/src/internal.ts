// Small helpers shared by the adapters and the mesh. Not exported from the package.
import { abortReason, throwIfAborted } from '@peertrain/base';
import { TransportError } from '@peertrain/protocol';

/** Calls every handler; a handler that throws is reported asynchronously and does not stop the others. */
export function emit<A extends unknown[]>(handlers: Iterable<(...args: A) => void>, ...args: A): void {
  for (const h of [...handlers]) {
    try {
      h(...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

/** Adds `handler` to `set` and returns the function that removes it. */
export function subscribe<T>(set: Set<T>, handler: T): () => void {
  set.add(handler);
  return () => {
    set.delete(handler);
  };
}

/** A signal that aborts when any of the given ones does (undefined entries are skipped). */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}

/**
 * Waiters for "bufferedAmount dropped low enough" (backpressure). Each waiter settles once:
 * resolved by wake(), rejected by fail() or by its own signal.
 */
export class DrainWaiters {
  private readonly waiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();

  wait(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(w);
        reject(abortReason(signal as AbortSignal));
      };
      const w = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      this.waiters.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get size(): number {
    return this.waiters.size;
  }

  wake(): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w.resolve();
  }

  fail(err: Error): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w.reject(err);
  }
}

/**
 * Incoming messages held until the first onMessage handler subscribes, so nothing sent right after
 * a link opens is lost to a handler that subscribes a moment later. Delivery stays in order.
 */
export class Inbox {
  private readonly handlers = new Set<(data: Uint8Array) => void>();
  private readonly held: Uint8Array[] = [];
  private flushScheduled = false;

  subscribe(handler: (data: Uint8Array) => void): () => void {
    const unsubscribe = subscribe(this.handlers, handler);
    if (this.held.length > 0) this.scheduleFlush();
    return unsubscribe;
  }

  push(data: Uint8Array): void {
    if (this.handlers.size === 0 || this.held.length > 0) {
      this.held.push(data);
      if (this.handlers.size > 0) this.scheduleFlush();
      return;
    }
    emit(this.handlers, data);
  }

  clear(): void {
    this.held.length = 0;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      while (this.handlers.size > 0) {
        const next = this.held.shift();
        if (!next) break;
        emit(this.handlers, next);
      }
    });
  }
}

/** Close notification that fires once, also for handlers that subscribe after the close. */
export class CloseSignal {
  private readonly handlers = new Set<(reason?: Error) => void>();
  private fired: { reason: Error | undefined } | null = null;

  get closed(): boolean {
    return this.fired !== null;
  }

  subscribe(handler: (reason?: Error) => void): () => void {
    if (this.fired) {
      const { reason } = this.fired;
      let active = true;
      queueMicrotask(() => {
        if (active) emit([handler], reason);
      });
      return () => {
        active = false;
      };
    }
    return subscribe(this.handlers, handler);
  }

  /** Marks closed now; handlers run in a microtask. Returns false if it had already fired. */
  fire(reason: Error | undefined): boolean {
    if (this.fired) return false;
    this.fired = { reason };
    const all = [...this.handlers];
    this.handlers.clear();
    queueMicrotask(() => emit(all, reason));
    return true;
  }
}

/** Chromium refuses a send ("RTCDataChannel send queue is full") once 16 MiB are queued. */
export const CHROMIUM_SEND_QUEUE_BYTES = 16 * 2 ** 20;

/**
 * The high-water mark a link really uses: `requested`, capped so that the queue (at most the mark
 * plus one message, since an awaited send stops at the mark) stays clear of Chromium's 16 MiB limit.
 */
export function effectiveHighWaterMark(requested: number, maxMessageSize: number): number {
  return Math.max(1, Math.min(requested, CHROMIUM_SEND_QUEUE_BYTES - 2 * maxMessageSize));
}

/** What `send` checks before it queues: not aborted, link open, message within maxMessageSize (TransportError). */
export function assertSendable(
  link: { readonly closed: boolean; readonly remoteId: string; readonly maxMessageSize: number },
  data: Uint8Array,
  signal: AbortSignal | undefined,
): void {
  throwIfAborted(signal);
  if (link.closed) throw new TransportError(`link to ${link.remoteId} is closed`);
  if (data.byteLength > link.maxMessageSize) {
    throw new TransportError(
      `message of ${data.byteLength} bytes exceeds maxMessageSize ${link.maxMessageSize} on the link to ${link.remoteId}`,
    );
  }
}
