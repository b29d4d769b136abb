import { useMemo, useSyncExternalStore } from 'react';
import { LIVE_VIEW_EVERY_MS, animationFrames, frameThrottledStore, type Source } from './frameStore.ts';

/**
 * The source's latest value, re-rendering at most once per animation frame and once per `everyMs`
 * (default LIVE_VIEW_EVERY_MS).
 */
export function useFrameThrottled<T>(source: Source<T>, everyMs = LIVE_VIEW_EVERY_MS): T {
  const store = useMemo(() => frameThrottledStore(source, animationFrames, everyMs), [source, everyMs]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}
