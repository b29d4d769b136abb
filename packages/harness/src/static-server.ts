import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import sirv from 'sirv';
import { abortable } from '@peertrain/base';
import { pageConfig, servePageConfig } from './page-config.ts';
import type { SignalInfo } from './page-config.ts';

export interface StaticServerOptions {
  /** Directory to serve (the Vite build output). */
  root?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Served as /peertrain.json with `iceServers`. */
  signalInfo: SignalInfo;
  iceServers?: RTCIceServer[];
  /** Aborting before the server listens rejects; aborting later closes it. */
  signal?: AbortSignal;
}

export interface StaticServer {
  /** Base URL, with a trailing slash: `http://127.0.0.1:PORT/`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves a built bundle (sirv: .wasm as application/wasm, directory index.html) plus /peertrain.json. */
export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const { root = 'dist', host = '127.0.0.1', port = 0, signal } = opts;
  signal?.throwIfAborted();
  const config = pageConfig(opts.signalInfo, opts.iceServers ?? []);
  const assets = sirv(root, {
    dev: false,
    etag: true,
    extensions: ['html'],
    setHeaders: (res) => res.setHeader('cache-control', 'no-store'),
  });
  const server = createServer((req, res) => {
    if (servePageConfig(config, req, res)) return;
    assets(req, res, () => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
    });
  });
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    await abortable(listening, signal);
  } catch (err) {
    await close();
    throw err;
  }
  if (signal) {
    const onAbort = (): void => void close();
    signal.addEventListener('abort', onAbort, { once: true });
    server.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${urlHost}:${bound}/`, port: bound, close };
}
