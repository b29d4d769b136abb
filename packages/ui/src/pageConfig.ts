import { ConfigError } from '@peertrain/protocol';
import { throwIfAborted } from '@peertrain/base';

// Both pages learn where the PeerJS signaling server is from GET /peertrain.json, written by whoever
// serves the pages (apps/signal, the CLI). Shape on the wire:
//   { signal: { host?: string, port: number, path: string, secure: boolean }, iceServers: RTCIceServer[] }
// `host` omitted means "the host this page came from" (location.hostname).

export interface SignalConfig {
  host: string;
  port: number;
  path: string;
  secure: boolean;
}

export interface PageConfig {
  signal: SignalConfig;
  iceServers: RTCIceServer[];
  /**
   * Tabs of one browser profile link through the browser (MessagePorts) rather than WebRTC
   * (transport tab-links.ts). Default true; false in /peertrain.json, or `?links=webrtc` on a page's
   * address, keeps every link on WebRTC.
   */
  tabLinks: boolean;
}

export const PAGE_CONFIG_URL = '/peertrain.json';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseIceServer(v: unknown, i: number, issues: string[]): RTCIceServer | null {
  if (!isRecord(v)) {
    issues.push(`iceServers.${i}: expected an object`);
    return null;
  }
  const urls = v.urls;
  const okUrls =
    typeof urls === 'string' ||
    (Array.isArray(urls) && urls.every((u): u is string => typeof u === 'string'));
  if (!okUrls) {
    issues.push(`iceServers.${i}.urls: expected a string or an array of strings`);
    return null;
  }
  const server: RTCIceServer = { urls };
  if (typeof v.username === 'string') server.username = v.username;
  if (typeof v.credential === 'string') server.credential = v.credential;
  return server;
}

/** unknown in, PageConfig out; throws ConfigError listing every problem. */
export function parsePageConfig(value: unknown, defaultHost: string): PageConfig {
  const issues: string[] = [];
  if (!isRecord(value)) throw new ConfigError('invalid /peertrain.json', ['(root): expected an object']);
  const s = value.signal;
  let signal: SignalConfig | null = null;
  if (!isRecord(s)) {
    issues.push('signal: expected an object');
  } else {
    if (s.host !== undefined && (typeof s.host !== 'string' || s.host === '')) {
      issues.push('signal.host: expected a non-empty string');
    }
    if (typeof s.port !== 'number' || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      issues.push('signal.port: expected an integer 1-65535');
    }
    if (typeof s.path !== 'string' || !s.path.startsWith('/'))
      issues.push('signal.path: expected a path starting with /');
    if (typeof s.secure !== 'boolean') issues.push('signal.secure: expected a boolean');
    if (issues.length === 0) {
      signal = {
        host: typeof s.host === 'string' ? s.host : defaultHost,
        port: s.port as number,
        path: s.path as string,
        secure: s.secure as boolean,
      };
    }
  }
  const ice = value.iceServers;
  const iceServers: RTCIceServer[] = [];
  if (!Array.isArray(ice)) {
    issues.push('iceServers: expected an array');
  } else {
    ice.forEach((v: unknown, i) => {
      const server = parseIceServer(v, i, issues);
      if (server) iceServers.push(server);
    });
  }
  const tabLinks = value.tabLinks ?? true;
  if (typeof tabLinks !== 'boolean') issues.push('tabLinks: expected a boolean');
  if (issues.length > 0 || signal === null) throw new ConfigError('invalid /peertrain.json', issues);
  return { signal, iceServers, tabLinks: tabLinks === true };
}

/** Whether this page links to the tabs of its profile through the browser: the config's say, unless the address has `links=webrtc`. */
export function tabLinksWanted(config: PageConfig, search: string): boolean {
  return config.tabLinks && new URLSearchParams(search).get('links') !== 'webrtc';
}

/** Human-readable address of the signaling server, for error messages. */
export function signalUrl(s: SignalConfig): string {
  return `${s.secure ? 'wss' : 'ws'}://${s.host}:${s.port}${s.path}`;
}

/**
 * Fetches and validates the page configuration. Rejects with ConfigError when the file is missing,
 * not JSON or invalid, and with the signal's reason on abort.
 */
export async function fetchPageConfig(opts: {
  defaultHost: string;
  url?: string;
  signal?: AbortSignal;
  fetchFn?: typeof fetch;
}): Promise<PageConfig> {
  const url = opts.url ?? PAGE_CONFIG_URL;
  const fetchFn = opts.fetchFn ?? fetch;
  let res: Response;
  try {
    // Accept: JSON only, so a dev/preview server's HTML fallback does not answer for a missing file.
    const init: RequestInit = { headers: { accept: 'application/json' }, cache: 'no-store' };
    if (opts.signal) init.signal = opts.signal;
    res = await fetchFn(url, init);
  } catch (err) {
    throwIfAborted(opts.signal);
    throw new ConfigError(`cannot load ${url}`, [err instanceof Error ? err.message : String(err)]);
  }
  if (!res.ok) throw new ConfigError(`cannot load ${url}`, [`HTTP ${res.status}`]);
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throwIfAborted(opts.signal);
    throw new ConfigError(`cannot load ${url}`, ['the response is not JSON']);
  }
  return parsePageConfig(body, opts.defaultHost);
}
