import { tabLinksTransport, locksLiveness } from './tab-links.ts';
import type { Transport } from './types.ts';

/**
 * `inner` with links through the browser to the tabs of this profile (tab-links.ts), where the
 * browser has SharedWorker and Web Locks; `inner` itself where it has not, or where the broker does
 * not start (then every link is the inner transport's, as before).
 */
export async function withTabLinks(
  inner: Transport,
  opts: { log?: (msg: string) => void } = {},
): Promise<Transport> {
  if (typeof SharedWorker !== 'function' || typeof navigator === 'undefined' || !navigator.locks)
    return inner;
  let worker: SharedWorker;
  try {
    worker = new SharedWorker(new URL('./tab-broker.worker.ts', import.meta.url), {
      type: 'module',
      name: 'peertrain-tab-links',
    });
  } catch (err) {
    opts.log?.(`tab links off: ${err instanceof Error ? err.message : String(err)}`);
    return inner;
  }
  try {
    return await tabLinksTransport(inner, { broker: worker.port, liveness: locksLiveness(navigator.locks) });
  } catch (err) {
    worker.port.close();
    opts.log?.(`tab links off: ${err instanceof Error ? err.message : String(err)}`);
    return inner;
  }
}
