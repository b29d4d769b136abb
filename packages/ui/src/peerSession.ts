import { createMesh } from '@peertrain/transport';
import { peerjsTransport } from '@peertrain/transport/peerjs';
import { withTabLinks } from '@peertrain/transport/tab-links';
import type { Mesh, Transport } from '@peertrain/transport';
import { PhaseTimeoutError } from '@peertrain/protocol';
import { tabLinksWanted } from './pageConfig.ts';
import type { PageConfig } from './pageConfig.ts';

/** How long registering with the signaling server may take before the page says it cannot reach it. */
export const SIGNAL_OPEN_TIMEOUT_MS = 15_000;

/** One tab's presence on the network: its PeerJS transport and the mesh framed on top of it. */
export interface PeerSession {
  readonly transport: Transport;
  readonly mesh: Mesh;
  /** Closes the mesh, then the transport. Idempotent. */
  close(): Promise<void>;
}

/**
 * Registers `peerId` with the signaling server named in `config` and builds the mesh.
 * Rejects with the transport's error (TransportError), PhaseTimeoutError('signaling') after
 * SIGNAL_OPEN_TIMEOUT_MS, or the signal's reason on abort.
 */
export async function openPeerSession(opts: {
  peerId: string;
  config: PageConfig;
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * Link to the tabs of this browser profile through the browser. Default: what the config and
   * the page's address say (tabLinksWanted).
   */
  tabLinks?: boolean;
}): Promise<PeerSession> {
  const timeoutMs = opts.timeoutMs ?? SIGNAL_OPEN_TIMEOUT_MS;
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const timer = setTimeout(() => ac.abort(new PhaseTimeoutError('signaling', timeoutMs)), timeoutMs);
  let transport: Transport;
  try {
    const { host, port, path, secure } = opts.config.signal;
    transport = await peerjsTransport({
      id: opts.peerId,
      host,
      port,
      path,
      secure,
      iceServers: opts.config.iceServers,
      signal: ac.signal,
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  const tabLinks = opts.tabLinks ?? tabLinksWanted(opts.config, globalThis.location?.search ?? '');
  if (tabLinks) transport = withTabLinks(transport, { log: (m) => console.warn(m) });
  const mesh = createMesh(transport);
  let closing: Promise<void> | null = null;
  return {
    transport,
    mesh,
    close() {
      closing ??= (async () => {
        try {
          await mesh.close();
        } finally {
          await transport.close();
        }
      })();
      return closing;
    },
  };
}
