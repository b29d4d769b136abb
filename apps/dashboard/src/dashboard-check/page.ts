// Browser-side helpers the dashboard checks share (run.ts: the pipeline run by hand; reload.ts:
// the run resumed after a reload): `npm start` on free ports, the Run form's fields, downloads.
// Imported by those scripts only (they run inside a private network namespace).
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Download, Locator, Page } from 'playwright-core';
import { abortReason } from '@peertrain/base';
import { REPO_ROOT, VITE_CACHE_DIR_ENV, waitForExit } from '@peertrain/harness';

/** SIGTERM (npm start closes both servers on it) and wait; nothing to do once it has exited. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = waitForExit(child);
  child.kill('SIGTERM');
  await exited;
}

/**
 * Starts `npm start` for `room` on free ports, its Vite cache in node_modules/.vite/`cacheName`
 * (a check's own: VITE_CACHE_DIR_ENV); resolves with the dashboard and worker links it printed.
 */
export async function startServer(
  room: string,
  cacheName: string,
  signal: AbortSignal,
): Promise<{
  child: ChildProcessByStdio<null, Readable, null>;
  links: { dashboard: string; worker: string };
}> {
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', join(REPO_ROOT, 'apps/signal/src/start.ts')],
      ...['--port', '0', '--signal-port', '0', '--room', room],
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, [VITE_CACHE_DIR_ENV]: join(REPO_ROOT, 'node_modules/.vite', cacheName) },
    },
  );
  const lines = createInterface({ input: child.stdout });
  let onAbort = (): void => undefined;
  try {
    const links = await new Promise<{ dashboard: string; worker: string }>((resolve, reject) => {
      onAbort = () => reject(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      child.once('exit', (code) => reject(new Error(`npm start exited with ${code}`)));
      let dashboard: string | null = null;
      // Its output goes on to stderr, for the test's failure message.
      lines.on('line', (line) => {
        process.stderr.write(`[start] ${line}\n`);
        const m = /^\s*(dashboard|worker)\s+(http:\/\/\S+)$/.exec(line);
        if (m?.[1] === 'dashboard' && m[2] !== undefined) dashboard ??= m[2];
        if (m?.[1] === 'worker' && m[2] !== undefined && dashboard !== null)
          resolve({ dashboard, worker: m[2] });
      });
    });
    return { child, links };
  } catch (err) {
    await stop(child);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The input or select of the Run form field whose caption is exactly `caption`. */
export function formControl(page: Page, caption: string): Locator {
  return page
    .locator('form.run-form label.field')
    .filter({ has: page.locator(':scope > span', { hasText: new RegExp(`^${caption}$`) }) })
    .locator('input, select')
    .first();
}

/** Clears a text field and types `value` key by key, as a person would. */
export async function typeInto(field: Locator, value: string): Promise<void> {
  await field.click();
  await field.press('ControlOrMeta+a');
  await field.press('Backspace');
  await field.pressSequentially(value);
}

/** A download saved under `dir` with the name the page suggested (`prefix` before it). */
export async function save(
  download: Download,
  dir: string,
  prefix = '',
): Promise<{ path: string; suggested: string }> {
  const suggested = download.suggestedFilename();
  const path = join(dir, prefix + suggested);
  await download.saveAs(path);
  return { path, suggested };
}
