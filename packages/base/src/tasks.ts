// Giving the event loop a turn in the middle of a long computation.

/**
 * Resolves after the pending macrotasks (network messages, timers) have had their turn. A
 * MessageChannel rather than setTimeout(0): browsers clamp nested timeouts to 4 ms (which would
 * add 4 ms to every yield) and run timers at most once a second in a hidden tab; messages are
 * neither clamped nor throttled. setTimeout where there is no MessageChannel.
 */
export function yieldToEventLoop(): Promise<void> {
  // eslint-disable-next-line no-restricted-globals -- a zero-delay turn, nothing to clear
  if (typeof MessageChannel !== 'function') return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close(); // a port left open keeps Node's event loop alive
      resolve();
    };
    port2.postMessage(null);
  });
}
