import { tabLinksTransport, locksLiveness } from './tab-links.ts';
import type { Transport } from './types.ts';

/**
 * `inner` with links through the browser to the tabs of this profile (tab-links.ts), where the
 * browser has SharedWorker and Web Locks; `inner` itself where it has not. Returns at once (build
 * the mesh on it right away: it hears every connection `inner` accepts); where the broker does not
 * start, `log` says why and every link is the inner transport's, as before.
 */
export function withTabLinks(inner: Transport, opts: { log?: (msg: string) => void } = {}): Transport {
  if (typeof SharedWorker !== 'function' || typeof navigator === 'undefined' || !navigator.locks)
    return inner;
  const off = (err: unknown): void =>
    opts.log?.(`tab links off: ${err instanceof Error ? err.message : String(err)}`);
  let worker: SharedWorker;
  try {
    worker = new SharedWorker(new URL('./tab-broker.worker.ts', import.meta.url), {
      type: 'module',
      name: 'peertrain-tab-links',
    });
  } catch (err) {
    off(err);
    return inner;
  }
  return tabLinksTransport(inner, {
    broker: worker.port,
    liveness: locksLiveness(navigator.locks),
    onUnavailable: (err) => {
      worker.port.close();
      off(err);
    },
  });
}
