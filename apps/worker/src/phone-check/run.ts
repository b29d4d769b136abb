// Inside a private network namespace (spawned by phone.e2e.test.ts): starts `npm start`
// (apps/signal) with --ice, opens the real dashboard headless as the coordinator, one desktop worker
// and one worker on a 360x740 phone viewport, waits until the phone trains, measures its layout,
// saves screenshots, presses Leave, and prints one JSON line (PhoneCheckResult) on stdout.
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { abortReason } from '@peertrain/base';
import { REPO_ROOT, VITE_CACHE_DIR_ENV, dashboardUrl, launchBrowser, waitForExit } from '@peertrain/harness';
import { FIELDS, ICE_URL, PHONE, type Layout, type PhoneCheckResult } from './check.ts';

const SCREENSHOTS = join(REPO_ROOT, '.artifacts/screenshots');
const ROOM = 'phone-check';

/** SIGTERM (npm start closes both servers on it) and wait; nothing to do once it has exited. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = waitForExit(child);
  child.kill('SIGTERM');
  await exited;
}

/** Starts `npm start` and resolves with its printed worker link once it has printed the banner. */
async function startServer(
  signal: AbortSignal,
): Promise<{ child: ChildProcessByStdio<null, Readable, null>; workerUrl: string }> {
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', join(REPO_ROOT, 'apps/signal/src/start.ts')],
      ...['--port', '0', '--signal-port', '0', '--room', ROOM, '--ice', ICE_URL],
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      // Its own Vite cache: other checks' dev servers may be bundling beside it (VITE_CACHE_DIR_ENV).
      env: { ...process.env, [VITE_CACHE_DIR_ENV]: join(REPO_ROOT, 'node_modules/.vite/phone-check') },
    },
  );
  const lines = createInterface({ input: child.stdout });
  let onAbort = (): void => undefined;
  try {
    const workerUrl = await new Promise<string>((resolve, reject) => {
      onAbort = () => reject(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      child.once('exit', (code) => reject(new Error(`npm start exited with ${code}`)));
      // Its output goes on to stderr, for the test's failure message.
      lines.on('line', (line) => {
        process.stderr.write(`[start] ${line}\n`);
        const m = /^\s*worker\s+(http:\/\/\S+)$/.exec(line);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
    });
    return { child, workerUrl };
  } catch (err) {
    await stop(child);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function main(): Promise<PhoneCheckResult> {
  const signal = AbortSignal.timeout(400_000);
  const t0 = performance.now();
  await mkdir(SCREENSHOTS, { recursive: true });
  const { child, workerUrl } = await startServer(signal);
  const browser = await launchBrowser({ signal });
  try {
    const serverUp = performance.now() - t0;
    const base = new URL('/', workerUrl).href;
    const pageConfig: unknown = await (await fetch(new URL('/peertrain.json', base), { signal })).json();

    // The coordinator: the real dashboard in headless mode runs the session by itself.
    const config = {
      workers: 2,
      strategy: 'data',
      sync: 'ps',
      dataset: 'synthetic',
      backend: 'auto',
      steps: 5000,
      evalEvery: 0,
    } as const;
    const dash = await (await browser.newContext()).newPage();
    await dash.goto(dashboardUrl(base, ROOM, config), { waitUntil: 'domcontentloaded' });
    const desk = await (await browser.newContext()).newPage();
    await desk.goto(`${workerUrl}&backend=wasm`, { waitUntil: 'domcontentloaded' });

    const phoneCtx = await browser.newContext({
      viewport: PHONE,
      screen: PHONE,
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const phone = await phoneCtx.newPage();
    const phoneErrors: string[] = [];
    phone.on('console', (m) => void (m.type() === 'error' && phoneErrors.push(m.text())));
    phone.on('pageerror', (e) => phoneErrors.push(`${e.name}: ${e.message}`));
    await phone.goto(workerUrl, { waitUntil: 'domcontentloaded' });

    const testid = (id: string) => phone.getByTestId(`worker-${id}`);
    // Training, a few steps in, with the figures filled.
    await phone.waitForFunction(
      () => {
        const phase = document.querySelector('[data-testid="worker-phase"]')?.textContent;
        const bar = document.querySelector('[role="progressbar"]');
        return phase === 'training' && Number(bar?.getAttribute('aria-valuenow')) >= 5;
      },
      undefined,
      { timeout: 240_000, polling: 250 },
    );
    const training = performance.now() - t0;

    const layout = (fields: readonly string[]): Promise<Layout> =>
      phone.evaluate((fields) => {
        const offenders: string[] = [];
        for (const id of fields) {
          const el = document.querySelector(`[data-testid="worker-${id}"]`);
          const r = el?.getBoundingClientRect();
          if (!el || !r || r.width === 0 || r.height === 0 || r.left < 0 || r.right > innerWidth)
            offenders.push(`${id}: ${r ? `${r.left.toFixed(0)}..${r.right.toFixed(0)}` : 'missing'}`);
        }
        return {
          innerWidth,
          scrollWidth: document.documentElement.scrollWidth,
          offenders,
        };
      }, fields);

    const trainingLayout = await layout(FIELDS);
    const texts: Record<string, string> = {};
    for (const id of FIELDS) texts[id] = ((await testid(id).textContent()) ?? '').trim();
    const bar = phone.getByRole('progressbar');
    const progress = {
      now: Number(await bar.getAttribute('aria-valuenow')),
      max: Number(await bar.getAttribute('aria-valuemax')),
    };
    const shot = join(SCREENSHOTS, 'worker-phone.png');
    const fullShot = join(SCREENSHOTS, 'worker-phone-full.png');
    await phone.screenshot({ path: shot });
    await phone.screenshot({ path: fullShot, fullPage: true });

    // Leave: the page must say so, still fit, and offer to join again.
    await testid('leave').click();
    await phone.waitForFunction(
      () => document.querySelector('[data-testid="worker-phase"]')?.textContent === 'left',
      undefined,
      { timeout: 30_000 },
    );
    const leftPhase = ((await testid('phase-text').textContent()) ?? '').trim();
    // The Leave button has become "Join again".
    const leftLayout = await layout(FIELDS.filter((f) => f !== 'leave'));
    const joinAgainVisible = await phone.getByRole('button', { name: 'Join again' }).isVisible();
    const leftShot = join(SCREENSHOTS, 'worker-phone-left.png');
    await phone.screenshot({ path: leftShot });

    return {
      joinUrl: workerUrl,
      pageConfig,
      training: texts,
      trainingLayout,
      progress,
      leftPhase,
      leftLayout,
      joinAgainVisible,
      screenshots: [shot, fullShot, leftShot],
      phoneErrors,
      ms: { serverUp, training },
    };
  } finally {
    await browser.close();
    await stop(child);
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err instanceof Error ? err.stack : String(err) })}\n`);
  process.exitCode = 1;
}
