// Giving the event loop a turn in the middle of a long computation.

/** A job waiting for its macrotask; `live` false once cancelled. */
interface Job {
  readonly fn: () => void;
  live: boolean;
}

/** The jobs in the order they were posted: each message on the channel runs the oldest. */
const queue: Job[] = [];
let channel: MessageChannel | null = null;

function openChannel(): MessageChannel {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => {
    const job = queue.shift();
    if (job?.live) job.fn();
  };
  return ch;
}

/**
 * Runs `fn` as a macrotask soon, after the pending ones (network messages, timers); returns its
 * cancel.
 * - In a browser: a message on one MessageChannel kept for the page's life, rather than
 *   setTimeout(0): browsers clamp nested timeouts to 4 ms and run timers at most once a second in a
 *   hidden tab; messages are neither clamped nor throttled. One channel for every job: making and
 *   closing a channel per turn cost a page 1.7% of its thread (profile of a DiLoCo worker, a turn
 *   per step for the batch prefetch).
 * - In Node: setImmediate, which runs after pending I/O. (Node delivers a port's messages in one
 *   go, those posted meanwhile included, so a shared channel there would starve everything else.)
 * - setTimeout where there is neither.
 */
export function macrotask(fn: () => void): () => void {
  if (typeof setImmediate === 'function') {
    const id = setImmediate(fn);
    return () => clearImmediate(id);
  }
  if (typeof MessageChannel !== 'function') {
    // eslint-disable-next-line no-restricted-globals -- a zero-delay turn, cleared by the cancel
    const id = setTimeout(fn, 0);
    // eslint-disable-next-line no-restricted-globals -- the cancel of the timeout above
    return () => clearTimeout(id);
  }
  const job: Job = { fn, live: true };
  queue.push(job);
  channel ??= openChannel();
  channel.port2.postMessage(null);
  return () => {
    job.live = false;
  };
}

/** Resolves after the pending macrotasks (network messages, timers) have had their turn (macrotask). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => void macrotask(resolve));
}
