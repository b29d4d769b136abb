import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError } from '@peertrain/protocol';
import {
  CHROMIUM_ARGS,
  DEFAULT_CHROMIUM,
  ROOM_PATTERN,
  ROOM_RULE,
  chromiumFlags,
  gpuEnv,
  shellCommand,
} from '@peertrain/harness';

/** Read when --ice-credential is absent, so the TURN secret stays out of the process list. */
export const ICE_CREDENTIAL_ENV = 'PEERTRAIN_ICE_CREDENTIAL';

export const USAGE = `Usage: npm start -- [options]

Serves the dashboard (Vite dev server) and PeerJS signaling, and prints the join links.

  --host HOST            interface to bind (default 127.0.0.1: this machine only). 0.0.0.0 binds
                         every interface and prints a join link per LAN IPv4 address; a LAN
                         address binds that interface only.
  --port N               dashboard port (default 5173; the next free one if taken)
  --signal-port N        PeerJS signaling port (default 9000)
  --room ID              room id (default random)
  --ice URL[,URL...]     STUN / TURN servers for volunteers beyond the LAN, written into
                         /peertrain.json (repeatable). stun:HOST[:PORT], stuns:..., and
                         turn:HOST[:PORT][?transport=udp|tcp], turns:...
  --ice-username NAME    TURN user name (required with a turn: URL)
  --ice-credential SECRET
                         TURN password (required with a turn: URL; or set ${ICE_CREDENTIAL_ENV}).
                         Every page that joins can read it: use a TURN user for PeerTrain only.
  --gpu                  also print a command that opens a worker tab in headless Chromium on this
                         machine's GPU (Vulkan; the flags and driver variables of README "Train on
                         a GPU server"); run it once per GPU worker
  -h, --help             this help
`;

export interface StartOptions {
  host: string;
  port: number;
  signalPort: number;
  room: string | undefined;
  /** For /peertrain.json: STUN servers (one entry) then TURN servers (one entry, with credentials). */
  iceServers: RTCIceServer[];
  /** Print the headless GPU worker command (gpuWorkerCommand) in the banner. */
  gpu: boolean;
}

function port(flag: string, raw: string | undefined, fallback: number, issues: string[]): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    issues.push(`--${flag}: expected a port number 0-65535, got ${JSON.stringify(raw)}`);
    return fallback;
  }
  return n;
}

// RFC 7064 (stun:, stuns:) and RFC 7065 (turn:, turns:): scheme, host (name, IPv4 or [IPv6]),
// optional port; TURN alone takes ?transport=udp|tcp.
const ICE_URL =
  /^(stuns?|turns?):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d{1,5}))?(\?transport=(?:udp|tcp))?$/;
// A DNS name: labels of letters, digits and inner hyphens.
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Why `url` is not a STUN/TURN URL a browser accepts, or null when it is one. */
function iceUrlProblem(url: string): string | null {
  const m = ICE_URL.exec(url);
  if (!m) return 'expected stun:HOST[:PORT], stuns:, turn:HOST[:PORT][?transport=udp|tcp] or turns:';
  const [, scheme = '', host = '', portText, transport] = m;
  if (host.startsWith('[') && isIP(host.slice(1, -1)) !== 6) return `bad IPv6 address ${host}`;
  if (!host.startsWith('[') && isIP(host) === 0 && !HOSTNAME.test(host)) return `bad host ${host}`;
  if (portText !== undefined) {
    const p = Number(portText);
    if (p < 1 || p > 65535) return `port ${portText} out of range 1-65535`;
  }
  if (transport !== undefined && scheme.startsWith('stun')) return '?transport= is for turn: URLs only';
  return null;
}

/**
 * The iceServers entries for `--ice` URLs (each value may hold several, comma-separated):
 * STUN URLs in one entry, TURN URLs in one entry with the user name and credential. Browsers
 * refuse a turn: URL without both (InvalidAccessError), so that is a ConfigError issue here.
 */
export function parseIceServers(
  values: readonly string[],
  auth: {
    username?: string | undefined;
    credential?: string | undefined;
    envCredential?: string | undefined;
  },
  issues: string[],
): RTCIceServer[] {
  const { username } = auth;
  const urls = values.flatMap((v) => v.split(',')).map((u) => u.trim());
  const stun: string[] = [];
  const turn: string[] = [];
  for (const url of urls) {
    const problem = url === '' ? 'empty URL' : iceUrlProblem(url);
    if (problem !== null) issues.push(`--ice ${JSON.stringify(url)}: ${problem}`);
    else (url.startsWith('turn') ? turn : stun).push(url);
  }
  // The environment's credential counts only for TURN: a stray variable is no error without one.
  const credential = auth.credential ?? (turn.length > 0 ? auth.envCredential : undefined);
  if (turn.length > 0) {
    if (username === undefined || username === '') issues.push('--ice-username: required with a turn: URL');
    if (credential === undefined || credential === '')
      issues.push(`--ice-credential: required with a turn: URL (or set ${ICE_CREDENTIAL_ENV})`);
  } else if (username !== undefined || credential !== undefined) {
    issues.push('--ice-username / --ice-credential: only TURN servers take them; add --ice turn:HOST');
  }
  const servers: RTCIceServer[] = [];
  if (stun.length > 0) servers.push({ urls: stun });
  if (turn.length > 0 && username !== undefined && credential !== undefined)
    servers.push({ urls: turn, username, credential });
  return servers;
}

/**
 * Parses the `npm start` options; throws ConfigError listing every problem. Null: help asked.
 * `env` supplies the TURN credential when --ice-credential is absent.
 */
export function parseStartOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): StartOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'signal-port': { type: 'string' },
        room: { type: 'string' },
        ice: { type: 'string', multiple: true },
        'ice-username': { type: 'string' },
        'ice-credential': { type: 'string' },
        gpu: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError('invalid command line', [err instanceof Error ? err.message : String(err)]);
  }
  if (values.help === true) return null;
  const issues: string[] = [];
  const host = values.host ?? '127.0.0.1';
  if (isIP(host) === 0 && !HOSTNAME.test(host))
    issues.push(`--host: expected an IP address or a host name, got ${JSON.stringify(host)}`);
  const opts: StartOptions = {
    host,
    port: port('port', values.port, 5173, issues),
    signalPort: port('signal-port', values['signal-port'], 9000, issues),
    room: values.room,
    iceServers: parseIceServers(
      values.ice ?? [],
      {
        username: values['ice-username'],
        credential: values['ice-credential'],
        envCredential: env[ICE_CREDENTIAL_ENV],
      },
      issues,
    ),
    gpu: values.gpu === true,
  };
  if (values.room !== undefined && !ROOM_PATTERN.test(values.room)) {
    issues.push(`--room: ${ROOM_RULE}`);
  }
  if (issues.length > 0) throw new ConfigError('invalid options', issues);
  return opts;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** Hostnames to print for a bound host: the LAN addresses for a wildcard, else the host itself. */
export function displayHosts(host: string, interfaces = networkInterfaces()): string[] {
  if (!WILDCARDS.has(host)) return [host.includes(':') ? `[${host}]` : host];
  const lan = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4' && !i.internal)
    .map((i) => i.address);
  return ['127.0.0.1', ...lan];
}

/** True when only this machine can reach `host` (loopback). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function joinUrls(
  hostname: string,
  port: number,
  room: string,
): { dashboard: string; worker: string } {
  const base = `http://${hostname}:${port}`;
  const q = `?room=${encodeURIComponent(room)}`;
  return { dashboard: `${base}/${q}`, worker: `${base}/apps/worker/${q}` };
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * A shell command that opens `workerUrl` as a worker tab in headless system Chromium on this
 * machine's GPU: the harness's base flags plus the GPU flags (one --enable-features and one
 * --disable-features, no Playwright features: nobody else passes them here) and the NVIDIA driver variables that exist.
 */
export function gpuWorkerCommand(workerUrl: string, env: Env, exists?: (path: string) => boolean): string {
  const flags = chromiumFlags({
    base: [...CHROMIUM_ARGS, '--headless'],
    gpu: true,
    inheritedFeatures: [],
    inheritedDisabled: [],
  });
  return shellCommand(DEFAULT_CHROMIUM, flags, gpuEnv(true, env, exists), workerUrl);
}

/**
 * What `npm start` prints once both servers listen: the dashboard and worker links for every
 * host a device can use, the signaling address, the ICE servers (never the credential), and a
 * hint when nothing but this machine can join.
 */
export function startBanner(
  info: {
    host: string;
    port: number;
    signalPort: number;
    signalPath: string;
    room: string;
    iceServers: readonly RTCIceServer[];
    /** With --gpu: the environment the GPU worker command reads the driver overrides from. */
    gpuEnv?: Env;
  },
  interfaces = networkInterfaces(),
): string[] {
  const lines = ['PeerTrain dev server (Ctrl-C stops)'];
  const hosts = displayHosts(info.host, interfaces);
  for (const h of hosts) {
    const urls = joinUrls(h, info.port, info.room);
    lines.push(`  dashboard  ${urls.dashboard}`, `  worker     ${urls.worker}`);
  }
  // Pages dial the signaling server on the host they were loaded from; print the last (a LAN one).
  lines.push(`  signaling  ws://${hosts.at(-1) ?? info.host}:${info.signalPort}${info.signalPath}`);
  for (const s of info.iceServers) {
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    const user = s.username === undefined ? '' : ` (user ${s.username})`;
    lines.push(`  ice        ${urls.join(', ')}${user}`);
  }
  if (info.gpuEnv !== undefined) {
    const worker = joinUrls(hosts[0] ?? info.host, info.port, info.room).worker;
    lines.push(`  gpu worker ${gpuWorkerCommand(worker, info.gpuEnv)}`);
  }
  if (isLoopback(info.host)) {
    lines.push('  (this machine only: --host 0.0.0.0 lets other devices on the LAN join)');
  } else if (WILDCARDS.has(info.host) && hosts.length === 1) {
    lines.push('  (no LAN IPv4 address found: other devices cannot reach this machine)');
  }
  return lines;
}
