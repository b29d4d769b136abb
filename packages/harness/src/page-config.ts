import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';

/** Where pages find the signaling server. `host` omitted: the page's own hostname. */
export interface SignalInfo {
  host?: string;
  port: number;
  path: string;
  secure: boolean;
}

/** The body of GET /peertrain.json, read by the dashboard and worker pages at start. */
export interface PageConfig {
  signal: SignalInfo;
  iceServers: RTCIceServer[];
}

export const PAGE_CONFIG_PATH = '/peertrain.json';

/**
 * When set, where `npm start`'s Vite dev server keeps its pre-bundled dependencies (Vite's cacheDir;
 * default node_modules/.vite). Dev servers started at once from one checkout with different
 * plugins re-bundle into a shared directory under each other's pages, which then fail to load with
 * "504 (Outdated Optimize Dep)": the tests give each server they start its own.
 */
export const VITE_CACHE_DIR_ENV = 'PEERTRAIN_VITE_CACHE_DIR';

export function pageConfig(signal: SignalInfo, iceServers: RTCIceServer[] = []): PageConfig {
  return { signal, iceServers };
}

/** Answers GET/HEAD /peertrain.json; returns false for any other request. */
export function servePageConfig(config: PageConfig, req: IncomingMessage, res: ServerResponse): boolean {
  const pathname = (req.url ?? '/').split('?')[0];
  if (pathname !== PAGE_CONFIG_PATH) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  const body = JSON.stringify(config);
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/** Vite plugin serving /peertrain.json from the dev server (used by `npm start`). */
export function peertrainJsonPlugin(config: PageConfig): Plugin {
  return {
    name: 'peertrain-json',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (!servePageConfig(config, req, res)) next();
      });
    },
  };
}
