// Throttles a fast-changing source (coordinator view, worker status) to at most one React render per
// animation frame: the source may notify hundreds of times a second; the page redraws at most 60.

export interface Source<T> {
  get(): T;
  /** Returns its unsubscribe. */
  subscribe(listener: (value: T) => void): () => void;
}

export interface FrameScheduler {
  request(cb: () => void): number;
  cancel(handle: number): void;
}

export const animationFrames: FrameScheduler = {
  request: (cb) => requestAnimationFrame(cb),
  cancel: (h) => cancelAnimationFrame(h),
};

export interface FrameStore<T> {
  /** For useSyncExternalStore: stable between frames. */
  getSnapshot: () => T;
  subscribe: (onChange: () => void) => () => void;
}

export function frameThrottledStore<T>(
  source: Source<T>,
  frames: FrameScheduler = animationFrames,
): FrameStore<T> {
  let snapshot = source.get();
  return {
    getSnapshot: () => snapshot,
    subscribe(onChange) {
      let latest = snapshot;
      let handle: number | null = null;
      const flush = (): void => {
        handle = null;
        if (latest !== snapshot) {
          snapshot = latest;
          onChange();
        }
      };
      const unsubscribe = source.subscribe((value) => {
        latest = value;
        handle ??= frames.request(flush);
      });
      // The source may have moved on between getSnapshot and subscribe.
      latest = source.get();
      handle ??= frames.request(flush);
      return () => {
        unsubscribe();
        if (handle !== null) frames.cancel(handle);
        handle = null;
      };
    },
  };
}
