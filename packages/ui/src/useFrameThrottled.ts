import { useMemo, useSyncExternalStore } from 'react';
import { LIVE_VIEW_EVERY_MS, animationFrames, frameThrottledStore, type Source } from './frameStore.ts';

/**
 * The source's latest value, re-rendering at most once per animation frame and once per `everyMs`
 * (default LIVE_VIEW_EVERY_MS); a change `urgent` says so of at the next frame (frameThrottledStore).
 * `urgent` should be stable (module level): a new function makes a new store.
 */
export function useFrameThrottled<T>(
  source: Source<T>,
  everyMs = LIVE_VIEW_EVERY_MS,
  urgent?: (next: T, shown: T) => boolean,
): T {
  const store = useMemo(
    () => frameThrottledStore(source, animationFrames, everyMs, urgent),
    [source, everyMs, urgent],
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}
