import { resolve } from 'node:path';
import { startSignalServer } from './signal-server.ts';
import type { SignalServer } from './signal-server.ts';
import { startStaticServer } from './static-server.ts';
import type { StaticServer } from './static-server.ts';

export interface SessionServers {
  signal: SignalServer;
  web: StaticServer;
  /** Closes both (idempotent). */
  close(): Promise<void>;
}

/**
 * The two servers a session needs, on ephemeral ports of `host`: PeerJS signaling at /peerjs and
 * the built pages from `dist`, whose /peertrain.json points at the former (host omitted: pages
 * use their own hostname). If the second fails to start, the first is closed.
 */
export async function startSessionServers(opts: {
  dist: string;
  host?: string;
  iceServers?: RTCIceServer[];
  signal?: AbortSignal;
}): Promise<SessionServers> {
  const { host = '127.0.0.1', signal } = opts;
  const signalServer = await startSignalServer({
    host,
    port: 0,
    path: '/peerjs',
    ...(signal ? { signal } : {}),
  });
  try {
    const web = await startStaticServer({
      root: resolve(opts.dist),
      host,
      port: 0,
      signalInfo: { port: signalServer.port, path: signalServer.path, secure: false },
      ...(opts.iceServers ? { iceServers: opts.iceServers } : {}),
      ...(signal ? { signal } : {}),
    });
    return {
      signal: signalServer,
      web,
      close: async () => {
        await Promise.allSettled([web.close(), signalServer.close()]);
      },
    };
  } catch (err) {
    await signalServer.close();
    throw err;
  }
}
