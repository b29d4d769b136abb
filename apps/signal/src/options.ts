import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError } from '@peertrain/protocol';
import { ROOM_PATTERN, ROOM_RULE } from '@peertrain/harness';

export const USAGE = `Usage: npm start -- [options]

Serves the dashboard (Vite dev server) and PeerJS signaling, and prints the join links.

  --host HOST          interface to bind (default 127.0.0.1; 0.0.0.0 for other devices on the LAN)
  --port N             dashboard port (default 5173; the next free one if taken)
  --signal-port N      PeerJS signaling port (default 9000)
  --room ID            room id (default random)
  -h, --help           this help
`;

export interface StartOptions {
  host: string;
  port: number;
  signalPort: number;
  room: string | undefined;
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

/** Parses the `npm start` options; throws ConfigError listing every problem. Null: help asked. */
export function parseStartOptions(argv: readonly string[]): StartOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'signal-port': { type: 'string' },
        room: { type: 'string' },
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
  if (host.trim() === '') issues.push('--host: empty');
  const opts: StartOptions = {
    host,
    port: port('port', values.port, 5173, issues),
    signalPort: port('signal-port', values['signal-port'], 9000, issues),
    room: values.room,
  };
  if (values.room !== undefined && !ROOM_PATTERN.test(values.room)) {
    issues.push(`--room: ${ROOM_RULE}`);
  }
  if (issues.length > 0) throw new ConfigError('invalid options', issues);
  return opts;
}

/** Hostnames to print for a bound host: the LAN addresses for a wildcard, else the host itself. */
export function displayHosts(host: string, interfaces = networkInterfaces()): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [host.includes(':') ? `[${host}]` : host];
  const lan = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4' && !i.internal)
    .map((i) => i.address);
  return ['127.0.0.1', ...lan];
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
