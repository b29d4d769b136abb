// Builds the batches of the next steps while the current step computes. JavaScript runs one thing
// at a time, so "while" means: production runs as a macrotask, i.e. whenever the step yields
// (awaiting a GPU readback, a network receive, the all-reduce), not in front of it.
import { AbortError, abortable, macrotask, throwIfAborted } from '@peertrain/base';

/** Schedules `fn` soon as a macrotask; returns its cancel function. Injected in tests. */
export type Scheduler = (fn: () => void) => () => void;

/**
 * A macrotask on base's shared MessageChannel rather than setTimeout(0): in a hidden tab Chrome runs
 * timers at most once a second, so every step waited up to a second for its batch (and nested
 * timeouts are clamped to 4 ms anyway); messages are not throttled.
 */
const defaultScheduler: Scheduler = macrotask;

export interface PrefetcherOptions<T> {
  /** The step of the first `next()`; default 0. */
  readonly firstStep?: number;
  /** How many steps to build ahead; default 1. */
  readonly depth?: number;
  /** Last step to build (inclusive); default unbounded. */
  readonly lastStep?: number;
  /** Releases an item that was built but never handed out (tensors). */
  readonly dispose?: (item: T) => void;
  readonly schedule?: Scheduler;
}

interface Slot<T> {
  readonly step: number;
  readonly promise: Promise<T>;
  /** Cancels production that has not started yet. */
  readonly cancel: () => void;
}

export class Prefetcher<T> {
  readonly #produce: (step: number, signal: AbortSignal) => T | Promise<T>;
  readonly #depth: number;
  readonly #lastStep: number;
  readonly #dispose: (item: T) => void;
  readonly #schedule: Scheduler;
  readonly #controller = new AbortController();
  /** Steps being built ahead, in order, starting at #nextStep. */
  readonly #slots: Slot<T>[] = [];
  #nextStep: number;

  constructor(
    produce: (step: number, signal: AbortSignal) => T | Promise<T>,
    opts: PrefetcherOptions<T> = {},
  ) {
    this.#produce = produce;
    this.#depth = Math.max(0, opts.depth ?? 1);
    this.#lastStep = opts.lastStep ?? Number.POSITIVE_INFINITY;
    this.#dispose = opts.dispose ?? (() => undefined);
    this.#schedule = opts.schedule ?? defaultScheduler;
    this.#nextStep = opts.firstStep ?? 0;
  }

  /** The step the next `next()` returns. */
  get step(): number {
    return this.#nextStep;
  }

  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Starts building `step` now (`immediately`) or as a macrotask. */
  #build(step: number, immediately: boolean): Slot<T> {
    const signal = this.#controller.signal;
    let cancel = (): void => undefined;
    const promise = new Promise<T>((resolve, reject) => {
      const run = (): void => {
        cancel = () => undefined;
        if (signal.aborted) return reject(new AbortError('prefetcher closed'));
        Promise.resolve()
          .then(() => this.#produce(step, signal))
          .then(resolve, reject);
      };
      if (immediately) return run();
      const unschedule = this.#schedule(run);
      cancel = () => {
        unschedule();
        reject(new AbortError('prefetcher closed'));
      };
    });
    promise.catch(() => undefined); // a rejection is reported by next(), never as unhandled
    return { step, promise, cancel: () => cancel() };
  }

  /** Releases an item nobody will receive, once it exists. */
  #discard(slot: Slot<T>): void {
    void slot.promise.then(
      (item) => this.#dispose(item),
      () => undefined,
    );
  }

  /** The item for the next step; then the following steps are scheduled to be built. */
  async next(opts: { signal?: AbortSignal } = {}): Promise<T> {
    throwIfAborted(opts.signal);
    if (this.closed) throw new AbortError('prefetcher closed');
    if (this.#nextStep > this.#lastStep)
      throw new AbortError(`prefetcher ended after step ${this.#lastStep}`);
    const step = this.#nextStep++;
    const slot = this.#slots.shift() ?? this.#build(step, true);
    for (
      let ahead = step + 1 + this.#slots.length;
      this.#slots.length < this.#depth && ahead <= this.#lastStep;
      ahead++
    ) {
      this.#slots.push(this.#build(ahead, false));
    }
    try {
      return await abortable(slot.promise, opts.signal);
    } catch (err) {
      this.#discard(slot); // the caller gave up on it
      throw err;
    }
  }

  /** Stops building; disposes items built ahead and never handed out. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.#controller.abort(new AbortError('prefetcher closed'));
    for (const slot of this.#slots.splice(0)) {
      slot.cancel();
      this.#discard(slot);
    }
  }
}
