import { useMemo, useSyncExternalStore } from 'react';
import { frameThrottledStore, type Source } from './frameStore.ts';

/** The source's latest value, re-rendering at most once per animation frame. */
export function useFrameThrottled<T>(source: Source<T>): T {
  const store = useMemo(() => frameThrottledStore(source), [source]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}
