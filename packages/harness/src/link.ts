import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { abortReason, abortable } from '@peertrain/base';
import { LinkUnavailableError } from './errors.ts';
import { formatLinkSpec, linkCommands, unlinkCommands, DELAY_DEVICE } from './link-spec.ts';
import type { LinkSpec } from './link-spec.ts';
import { insideIsolatedNetwork } from './netns.ts';

/** link-delay.py, beside this file. */
const DELAY_SCRIPT = fileURLToPath(new URL('./link-delay.py', import.meta.url));
/** How long link-delay.py may take to attach to its TUN device and say "ready". */
const DELAY_READY_TIMEOUT_MS = 20_000; // python3 took over 5 s to start under a load of 13-19

/** An applied impairment; `close()` stops the delay process and removes the rules (idempotent). */
export interface AppliedLink {
  spec: LinkSpec;
  /** formatLinkSpec(spec), for reports. */
  text: string;
  close(): Promise<void>;
}

/** Runs one command; rejects with LinkUnavailableError naming the command and its stderr. */
function run(argv: readonly string[], signal: AbortSignal | undefined): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...(signal ? { signal } : {}) }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if (signal?.aborted) return reject(abortReason(signal));
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ` (${cmd} is not installed)` : '';
      reject(new LinkUnavailableError(`${argv.join(' ')} failed${missing}: ${stderr.trim() || err.message}`));
    });
  });
}

/**
 * Starts link-delay.py on DELAY_DEVICE and resolves once it is attached (it prints "ready"); its
 * stderr goes into the error when it exits or stays silent for DELAY_READY_TIMEOUT_MS.
 */
async function startDelay(delayMs: number, signal: AbortSignal | undefined): Promise<ChildProcess> {
  try {
    await access('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new LinkUnavailableError('--link delay needs /dev/net/tun (the tun driver), which is missing here');
  }
  const child = spawn('python3', [DELAY_SCRIPT, DELAY_DEVICE, String(delayMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(
        new LinkUnavailableError(`--link delay: link-delay.py ${why}${stderr ? `: ${stderr.trim()}` : ''}`),
      );
    };
    const timer = setTimeout(
      () => fail(`not ready after ${DELAY_READY_TIMEOUT_MS} ms`),
      DELAY_READY_TIMEOUT_MS,
    );
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' ? 'cannot start: python3 is not installed' : err.message),
    );
    child.once('exit', (code) => fail(`exited with ${code}`));
    child.stdout?.on('data', (d: Buffer) => {
      if (!d.toString().includes('ready')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
  await abortable(ready, signal, () => child.kill('SIGTERM'));
  return child;
}

/**
 * Impairs UDP between the peers in this private network namespace as `spec` says (linkCommands:
 * htb rate on lo, nftables loss, delay through a TUN device and link-delay.py). Call it before the
 * browser starts; `close()` undoes it. Refuses outside the namespace (it would shape the machine's
 * own loopback) with LinkUnavailableError, as when a tool is missing; a partial setup is undone.
 */
export async function applyLink(spec: LinkSpec, opts: { signal?: AbortSignal } = {}): Promise<AppliedLink> {
  const { signal } = opts;
  signal?.throwIfAborted();
  if (!insideIsolatedNetwork())
    throw new LinkUnavailableError(
      '--link applies only inside the private network namespace (--isolated-network)',
    );
  let delay: ChildProcess | null = null;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    delay?.kill('SIGTERM');
    for (const cmd of unlinkCommands()) await run(cmd, undefined).catch(() => undefined);
  };
  try {
    for (const cmd of linkCommands(spec)) await run(cmd, signal);
    if (spec.delayMs !== undefined) delay = await startDelay(spec.delayMs, signal);
  } catch (err) {
    await close();
    throw err;
  }
  return { spec, text: formatLinkSpec(spec), close };
}
