// Throttles a fast-changing source (coordinator view, worker status) to at most one React render per
// `everyMs` (and never more than one per animation frame): the source may notify hundreds of times a
// second. Every render of the dashboard costs its tab style, layout and paint, and that tab shares
// the machine's cores with the workers: at one render per frame a 3-worker session's dashboard took
// most of a core (bench "dashboard"; README "Live views").

export interface Source<T> {
  get(): T;
  /** Returns its unsubscribe. */
  subscribe(listener: (value: T) => void): () => void;
}

export interface FrameScheduler {
  request(cb: () => void): number;
  cancel(handle: number): void;
  /** Runs `cb` after `ms` (a timer). */
  after(cb: () => void, ms: number): number;
  cancelAfter(handle: number): void;
  now(): number;
}

export const animationFrames: FrameScheduler = {
  request: (cb) => requestAnimationFrame(cb),
  cancel: (h) => cancelAnimationFrame(h),
  after: (cb, ms) => setTimeout(cb, ms) as unknown as number,
  cancelAfter: (h) => clearTimeout(h),
  now: () => performance.now(),
};

/** The live views' default: 8 renders a second, enough for counters and charts to read as live. */
export const LIVE_VIEW_EVERY_MS = 125;

/**
 * A page nobody watches (the CLI's headless dashboard: the terminal shows the progress, a
 * screenshot the end) draws once a second. At 8 a second its charts, timeline and topology took
 * 2 of a 3-tab DiLoCo session's 7 s of training in CPU (4 ms a step) that the workers lacked.
 */
export const UNWATCHED_VIEW_EVERY_MS = 1000;

export interface FrameStore<T> {
  /** For useSyncExternalStore: stable between renders. */
  getSnapshot: () => T;
  subscribe: (onChange: () => void) => () => void;
}

/**
 * `urgent(next, shown)`: a change that is drawn at the next frame whatever `everyMs` says (a run's
 * phase, say: a slow view must not show a finished run as running).
 */
export function frameThrottledStore<T>(
  source: Source<T>,
  frames: FrameScheduler = animationFrames,
  everyMs = LIVE_VIEW_EVERY_MS,
  urgent?: (next: T, shown: T) => boolean,
): FrameStore<T> {
  let snapshot = source.get();
  return {
    getSnapshot: () => snapshot,
    subscribe(onChange) {
      let latest = snapshot;
      let frame: number | null = null;
      let timer: number | null = null;
      let lastFlush = -Infinity;
      const flush = (): void => {
        frame = null;
        if (latest !== snapshot) {
          snapshot = latest;
          lastFlush = frames.now();
          onChange();
        }
      };
      const schedule = (): void => {
        if (frame !== null || timer !== null) return; // a render is already on its way
        const wait = lastFlush + everyMs - frames.now();
        if (wait <= 0) {
          frame = frames.request(flush);
          return;
        }
        timer = frames.after(() => {
          timer = null;
          frame ??= frames.request(flush);
        }, wait);
      };
      const unsubscribe = source.subscribe((value) => {
        latest = value;
        if (urgent?.(value, snapshot) === true && frame === null) {
          if (timer !== null) frames.cancelAfter(timer);
          timer = null;
          frame = frames.request(flush);
        } else schedule();
      });
      // The source may have moved on between getSnapshot and subscribe.
      latest = source.get();
      schedule();
      return () => {
        unsubscribe();
        if (frame !== null) frames.cancel(frame);
        if (timer !== null) frames.cancelAfter(timer);
        frame = null;
        timer = null;
      };
    },
  };
}
