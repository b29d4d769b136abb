import { toWireError, type WireError } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';
import type { RunReport } from '@peertrain/coordinator';

// Owns the one run this page started (from the form or headless mode): whether it is in flight,
// and its report or error once settled. Lives outside React so headless mode can start a run
// during boot; the page reads it through subscribe().

export interface RunOutcome {
  busy: boolean;
  report: RunReport | null;
  error: WireError | null;
}

export interface RunController {
  state: () => RunOutcome;
  subscribe: (listener: (state: RunOutcome) => void) => () => void;
  /** Starts `task` unless one is in flight (returns false then). The signal aborts on dispose(). */
  start(task: (signal: AbortSignal) => Promise<RunReport>): boolean;
  /** Aborts the run in flight, if any. */
  dispose(): void;
}

export function createRunController(): RunController {
  let state: RunOutcome = { busy: false, report: null, error: null };
  const listeners = new Set<(s: RunOutcome) => void>();
  let inFlight: AbortController | null = null;
  const set = (next: RunOutcome): void => {
    state = next;
    for (const l of [...listeners]) l(state);
  };
  return {
    state: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start(task) {
      if (inFlight) return false;
      const ac = new AbortController();
      inFlight = ac;
      set({ busy: true, report: null, error: null });
      let promise: Promise<RunReport>;
      try {
        promise = task(ac.signal);
      } catch (err) {
        promise = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      promise.then(
        (report) => {
          if (inFlight === ac) inFlight = null;
          if (!ac.signal.aborted) set({ busy: false, report, error: null });
        },
        (err: unknown) => {
          if (inFlight === ac) inFlight = null;
          if (!ac.signal.aborted) set({ busy: false, report: null, error: toWireError(err) });
        },
      );
      return true;
    },
    dispose() {
      inFlight?.abort(new AbortError('dashboard closed'));
      inFlight = null;
      listeners.clear();
    },
  };
}
