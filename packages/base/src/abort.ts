// Cancellation helpers shared by every package: one AbortError, one way to turn an abort reason into
// an Error, one abortable sleep and one abortable race. Every async operation in PeerTrain takes
// `{ signal?: AbortSignal }`; these are the few primitives that code is written with.

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'aborted') {
    super(message);
  }
}

/**
 * An abort reason (or any caught value) as an Error: an Error is returned as is, anything else
 * becomes an AbortError carrying the reason when it is a string.
 */
export function asError(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  return new AbortError(typeof reason === 'string' ? reason : 'aborted');
}

/** The error an aborted signal stands for: its reason when that is an Error, else an AbortError. */
export function abortReason(signal: AbortSignal): Error {
  return asError(signal.reason);
}

/** Throws the signal's reason (see abortReason) if the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** Resolves after `ms`, or rejects with the signal's reason (and clears the timer) on abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      // eslint-disable-next-line no-restricted-globals -- sleep is what pure packages use instead of a raw timer: it owns this one
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    // eslint-disable-next-line no-restricted-globals -- as above: the one raw timer, cleared on abort
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles like `promise`, or rejects with the abort reason as soon as `signal` aborts (the listener
 * is removed either way). The underlying work is not stopped by this: pass the signal down where it
 * can be, or pass `onAbort` to stop it (called once, on abort, before the rejection).
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort?.();
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const TIMEOUT = Symbol('deadline timeout');

/**
 * A signal that aborts with `signal` or, after `ms`, with a TimeoutError: what
 * `AbortSignal.any([signal, AbortSignal.timeout(ms)])` says, made safe in Node. There a timeout
 * signal held only by `AbortSignal.any` can be garbage collected before it fires (nodejs/node#57736),
 * and the deadline never comes: a worker's join, given 2.5 s, was still dialling after 60 s. The
 * returned signal holds its timeout, so the timeout lives as long as the deadline is in use.
 */
export function deadline(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  if (!signal) return timeout;
  const combined = AbortSignal.any([signal, timeout]);
  Object.defineProperty(combined, TIMEOUT, { value: timeout });
  return combined;
}
