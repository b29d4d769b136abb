import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';
import { abortable } from '@peertrain/base';
import { REPO_ROOT } from './build.ts';

/** Set in the environment of a process started inside the private namespace (value: parent pid). */
export const ISOLATED_ENV = 'PEERTRAIN_ISOLATED_NETNS';

/**
 * Measured on this machine (packages/harness/README.md, "WebRTC on a CI machine"): inside `unshare -n`, bring lo up and add a veth pair with an address and a default
 * route. Without the route Chromium gathers no ICE candidates; the kernel has no `dummy` link type.
 * Nothing can leave the namespace. Then exec the command given as "$@".
 *
 * The veths get no IPv6 link-local addresses (addrgenmode none): the kernel adds those a second or
 * two after the links come up (after duplicate address detection), by then inside the command, and
 * Chromium takes that for a network change and fails what it is loading with ERR_NETWORK_CHANGED
 * (seen in CI as dashboard and worker tabs that lost their scripts). Nothing here uses IPv6.
 */
export const NETNS_SETUP_SCRIPT =
  'ip link set lo up && ip link add v0 type veth peer name v1 && ' +
  'ip link set v0 addrgenmode none && ip link set v1 addrgenmode none && ' +
  'ip addr add 10.213.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up && ' +
  'ip route add default via 10.213.0.2 dev v0 && exec "$@"';

/** True in a process started by spawnIsolated / reexecIsolated. */
export function insideIsolatedNetwork(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env[ISOLATED_ENV] ?? '') !== '';
}

export interface SpawnIsolatedOptions {
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** New session (own process group): terminal signals reach only the parent, which forwards them. */
  detached?: boolean;
}

/** Spawns `command args` inside a fresh private network namespace (needs root). */
export function spawnIsolated(
  command: string,
  args: readonly string[],
  opts: SpawnIsolatedOptions = {},
): ChildProcess {
  return spawn('unshare', ['-n', 'sh', '-c', NETNS_SETUP_SCRIPT, 'sh', command, ...args], {
    stdio: opts.stdio ?? 'inherit',
    env: { ...(opts.env ?? process.env), [ISOLATED_ENV]: String(process.pid) },
    detached: opts.detached ?? false,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
}

/** Exit status of a child as a shell reports it: the code, or 128 + signal number. */
export function exitStatus(code: number | null, sig: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (sig !== null) return 128 + (constants.signals[sig] ?? 0);
  return 1;
}

/** Resolves with the child's exit status; rejects if it cannot be started. */
export function waitForExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve(exitStatus(code, sig)));
  });
}

let availability: Promise<boolean> | null = null;

/**
 * True when a private network namespace with the veth setup can be created here (root, unshare,
 * ip). Tried once per process (about 20 ms) and cached.
 */
export function isolatedNetworkAvailable(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  availability ??= (async () => {
    if (process.platform !== 'linux') return false;
    try {
      return (await waitForExit(spawnIsolated('true', [], { stdio: 'ignore' }))) === 0;
    } catch {
      return false; // unshare missing
    }
  })();
  return abortable(availability, opts.signal);
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface ReexecOptions {
  /** Node flags for the child (default: this process's execArgv, e.g. `--import tsx`). */
  execArgv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Aborting sends SIGTERM to the child; the promise still resolves with its exit status. */
  signal?: AbortSignal;
}

/**
 * Re-runs this Node program (`argv`, default process.argv) inside a private network namespace and
 * resolves with its exit status. The child gets ISOLATED_ENV so it does not loop. stdio is
 * inherited; the child runs in its own session so that a terminal Ctrl-C reaches it exactly once,
 * forwarded from here (SIGINT, SIGTERM, SIGHUP). Callers exit with the returned status.
 */
export async function reexecIsolated(
  argv: readonly string[] = process.argv,
  opts: ReexecOptions = {},
): Promise<number> {
  opts.signal?.throwIfAborted();
  const child = spawnIsolated(process.execPath, [...(opts.execArgv ?? process.execArgv), ...argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    ...(opts.env ? { env: opts.env } : {}),
  });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  for (const sig of FORWARDED) process.on(sig, forward);
  const onAbort = (): void => void child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await waitForExit(child);
  } finally {
    for (const sig of FORWARDED) process.off(sig, forward);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * In a child started by reexecIsolated: calls `callback` once if the parent goes away (its pid is
 * in ISOLATED_ENV; a detached child would otherwise outlive a killed parent). Returns the
 * unsubscribe. Polls process.ppid on an unref'd timer.
 */
export function onParentExit(callback: () => void, intervalMs = 1000): () => void {
  const parent = Number(process.env[ISOLATED_ENV]);
  if (!Number.isInteger(parent) || parent <= 0) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      callback();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** What a script run in the private namespace printed: its exit code, stderr, and its last stdout line as JSON. */
export interface IsolatedScriptResult {
  code: number;
  stderr: string;
  /** JSON.parse of the last stdout line (null when it printed nothing). */
  result: unknown;
}

/**
 * Runs a TypeScript script (`node --import tsx`) inside a private network namespace from the repo
 * root (with `args` after it) and collects its output: the e2e tests that drive browsers in a script
 * share this.
 */
export async function runIsolatedScript(
  script: string,
  args: readonly string[] = [],
): Promise<IsolatedScriptResult> {
  const child = spawnIsolated(process.execPath, ['--import', 'tsx', join(REPO_ROOT, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: REPO_ROOT,
  });
  let out = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await waitForExit(child);
  return { code, stderr, result: JSON.parse(out.trim().split('\n').at(-1) || 'null') as unknown };
}
