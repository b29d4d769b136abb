import { asError, deadline } from '@peertrain/base';
import { PhaseTimeoutError } from '@peertrain/protocol';
import type { ToCoordinator } from '@peertrain/protocol';

/** Someone waiting for a message: `match` is asked after each one, `resolve` once it says yes. */
export type Waiter = { match: (from: string, msg: ToCoordinator) => boolean; resolve: () => void };

/** What can be waited on: a run or a plan preview (its abort ends every wait). */
export interface WaitScope {
  abort: AbortController;
  waiters: Set<Waiter>;
}

/** Resolves when `cond()` holds after some message, or rejects on abort / PhaseTimeoutError after `ms`. */
export function waitFor(scope: WaitScope, phase: string, ms: number, cond: () => boolean): Promise<void> {
  if (cond()) return Promise.resolve();
  // An abort listener added to an aborted signal never fires: a run stopped between two waits ends here.
  if (scope.abort.signal.aborted) return Promise.reject(asError(scope.abort.signal.reason));
  return new Promise<void>((resolve, reject) => {
    const signal = deadline(scope.abort.signal, ms);
    const waiter: Waiter = {
      match: () => cond(),
      resolve: () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
    };
    const onAbort = (): void => {
      scope.waiters.delete(waiter);
      reject(
        scope.abort.signal.aborted ? asError(scope.abort.signal.reason) : new PhaseTimeoutError(phase, ms),
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    scope.waiters.add(waiter);
  });
}

/** Wakes the scope's waiters whose condition `msg` from `from` fulfils. */
export function wake(scope: WaitScope, from: string, msg: ToCoordinator): void {
  for (const w of [...scope.waiters]) {
    if (w.match(from, msg)) {
      scope.waiters.delete(w);
      w.resolve();
    }
  }
}

/** Resolves when the `release` handed to `hold` is called; rejects when `signal` aborts first. */
export function untilReleased(signal: AbortSignal, hold: (release: () => void) => void): Promise<void> {
  if (signal.aborted) return Promise.reject(asError(signal.reason));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(asError(signal.reason));
    hold(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
