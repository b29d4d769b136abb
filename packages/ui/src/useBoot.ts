import { useCallback, useEffect, useRef, useState } from 'react';
import { toWireError, type WireError } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';

// Owns one async resource for the page's lifetime (page config -> signaling -> coordinator or worker
// runtime): starts it, reports which stage it is in, disposes it on unmount, and can retry. A new start
// waits for the previous disposal, so a PeerJS id is released before it is claimed again.

export type BootState<T, S> =
  | { status: 'starting'; stage: S }
  | { status: 'ready'; value: T }
  | { status: 'failed'; stage: S; error: WireError };

export interface BootContext<S> {
  signal: AbortSignal;
  setStage: (stage: S) => void;
}

export function useBoot<T, S>(
  start: (ctx: BootContext<S>) => Promise<T>,
  dispose: (value: T) => Promise<void>,
  /** A constant (module-level) value: a new identity restarts the resource. */
  firstStage: S,
): { state: BootState<T, S>; retry: () => void } {
  const [state, setState] = useState<BootState<T, S>>({ status: 'starting', stage: firstStage });
  const [attempt, setAttempt] = useState(0);
  const disposal = useRef<Promise<void>>(Promise.resolve());
  // The latest callbacks, without restarting the resource when their identity changes.
  const startRef = useRef(start);
  const disposeRef = useRef(dispose);
  useEffect(() => {
    startRef.current = start;
    disposeRef.current = dispose;
  });

  useEffect(() => {
    const ac = new AbortController();
    let stage = firstStage;
    const previous = disposal.current;
    const run = (async (): Promise<T | undefined> => {
      await previous;
      if (ac.signal.aborted) return undefined;
      try {
        const value = await startRef.current({
          signal: ac.signal,
          setStage: (s) => {
            stage = s;
            if (!ac.signal.aborted) setState({ status: 'starting', stage: s });
          },
        });
        if (!ac.signal.aborted) setState({ status: 'ready', value });
        return value;
      } catch (err) {
        if (!ac.signal.aborted) setState({ status: 'failed', stage, error: toWireError(err) });
        return undefined;
      }
    })();
    return () => {
      ac.abort(new AbortError('page closed'));
      disposal.current = run
        .then((value) => (value === undefined ? undefined : disposeRef.current(value)))
        .catch((err: unknown) => console.warn('dispose failed', err));
    };
  }, [attempt, firstStage]);

  const retry = useCallback(() => {
    setState({ status: 'starting', stage: firstStage });
    setAttempt((a) => a + 1);
  }, [firstStage]);

  return { state, retry };
}
