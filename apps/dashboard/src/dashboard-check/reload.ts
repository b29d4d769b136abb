// Inside a private network namespace (spawned by reload.e2e.test.ts): `npm start`, the dashboard
// and 2 worker tabs. A data-parallel run from the Run form trains to the end (the uninterrupted
// run: its report and weights are saved). The same run again is paused once a checkpoint is in
// IndexedDB, and the dashboard tab is reloaded (or, with --close, closed and the room's URL opened
// in a new tab of the same browser profile): the page must reclaim the coordinator id, find the
// run's marker and checkpoint, and resume with the workers that waited for it, to the last step.
// Saves the resumed run's report and weights and a screenshot; prints one JSON line
// (ReloadCheckResult, or { error }) on stdout; the test judges it.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, launchBrowser } from '@peertrain/harness';
import { formControl, save, startServer, stop, typeInto } from './page.ts';
import { RELOAD_FORM, RELOAD_ROOM, RELOAD_WORKERS, type ReloadCheckResult } from './reload-check.ts';
import { VIEWPORT } from './check.ts';

/** How the dashboard goes away: reloaded, or closed and opened again. */
const MODE: 'reload' | 'close' = process.argv.includes('--close') ? 'close' : 'reload';
const SCREENSHOTS = join(REPO_ROOT, '.artifacts/screenshots');
const DOWNLOADS = join(REPO_ROOT, `.artifacts/reload-check-${MODE}`);
/** Generous: 2 shared cores, a cold Vite dev server. */
const LONG_WAIT_MS = 180_000;
/** The whole check; past it the check fails naming the last milestone it reached. */
const CHECK_MS = 400_000;

/** The last milestone reached, also written to stderr (the test prints stderr when it fails). */
let reached = 'starting';
function milestone(what: string): void {
  reached = what;
  process.stderr.write(`[reload-check] ${new Date().toISOString()} ${what}\n`);
}

/** Progress bar's step, or its maximum. */
async function progress(page: Page, attr: 'aria-valuenow' | 'aria-valuemax'): Promise<number> {
  return Number(await page.getByRole('progressbar', { name: 'training progress' }).getAttribute(attr));
}

/** The run's phase pill text. */
async function phase(page: Page): Promise<string> {
  return ((await page.locator('.progress-card .pill').first().textContent()) ?? '').trim();
}

/** Waits for the report; saves its Report JSON and weights.bin as `prefix`-*. */
async function downloads(page: Page, prefix: string): Promise<{ report: string; weights: string }> {
  await page.locator('section.report').waitFor({ timeout: LONG_WAIT_MS });
  const reportDownload = page.waitForEvent('download', { timeout: LONG_WAIT_MS });
  await page.getByRole('button', { name: 'Report JSON', exact: true }).click();
  const report = await save(await reportDownload, DOWNLOADS, `${prefix}-`);
  const exportModel = page.getByTestId('export-model');
  await exportModel.waitFor({ timeout: 60_000 });
  const weightsDownload = page.waitForEvent('download', {
    predicate: (d) => d.suggestedFilename() === 'weights.bin',
    timeout: LONG_WAIT_MS,
  });
  await exportModel.click();
  const weights = await save(await weightsDownload, DOWNLOADS, `${prefix}-`);
  return { report: report.path, weights: weights.path };
}

/** Set once the pages are open: what they show now. */
let describe = (): Promise<string> => Promise.resolve('no pages yet');

async function main(): Promise<ReloadCheckResult> {
  const signal = AbortSignal.timeout(500_000);
  const t0 = performance.now();
  await mkdir(SCREENSHOTS, { recursive: true });
  await rm(DOWNLOADS, { recursive: true, force: true });
  await mkdir(DOWNLOADS, { recursive: true });
  const { child, links } = await startServer(RELOAD_ROOM, 'reload-check', signal);
  const browser = await launchBrowser({ signal });
  try {
    // One browser profile for the dashboard (its IndexedDB and localStorage survive the reload).
    const dashCtx = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    const dashboardErrors: string[] = [];
    // The dashboard's log and error events (its emitter calls window.peertrainEmit when present):
    // a check that fails says what the page was doing.
    const dashboardLog: string[] = [];
    await dashCtx.exposeFunction(
      'peertrainEmit',
      (e: { type: string; message?: string; error?: unknown }) => {
        if (e.type !== 'log' && e.type !== 'error' && e.type !== 'done') return;
        const what = e.type === 'log' ? e.message : e.type === 'error' ? JSON.stringify(e.error) : '';
        dashboardLog.push(`${new Date().toISOString().slice(11, 23)} ${e.type} ${what ?? ''}`);
        if (dashboardLog.length > 40) dashboardLog.shift();
      },
    );
    // Its console's warnings and errors too (a signaling server it cannot reach says so there only).
    const dashboardConsole: string[] = [];
    const openDashboard = async (): Promise<Page> => {
      const p = await dashCtx.newPage();
      p.on('pageerror', (e) => dashboardErrors.push(`${e.name}: ${e.message}`));
      p.on('console', (m) => {
        if (m.type() !== 'error' && m.type() !== 'warning') return;
        dashboardConsole.push(
          `${new Date().toISOString().slice(11, 23)} ${m.type()} ${m.text().slice(0, 300)}`,
        );
        if (dashboardConsole.length > 20) dashboardConsole.shift();
      });
      return p;
    };
    // Until the workers are open: what the dashboard said (a first load that never came online).
    describe = () =>
      Promise.resolve(
        `dashboard errors: [${dashboardErrors.join('; ')}]; dashboard console:\n  ${dashboardConsole.join('\n  ')}` +
          `\ndashboard log:\n  ${dashboardLog.join('\n  ')}`,
      );
    let page = await openDashboard();
    await page.goto(links.dashboard, { waitUntil: 'domcontentloaded' });
    await page.getByText('coordinator online').waitFor({ timeout: LONG_WAIT_MS });
    const shared = await page.getByRole('textbox', { name: 'worker link' }).inputValue();
    const workerErrors: string[] = [];
    const workers: Page[] = [];
    for (let i = 0; i < RELOAD_WORKERS; i++) {
      const worker = await (await browser.newContext()).newPage();
      worker.on('pageerror', (e) => workerErrors.push(`worker ${i}: ${e.name}: ${e.message}`));
      await worker.goto(shared, { waitUntil: 'domcontentloaded' });
      workers.push(worker);
    }
    // On a timeout, the error says what the peer table and each worker page showed (a worker that
    // never got past probing or dialling, or a peer table that never listed it).
    const text = (p: Page, selector: string): Promise<string> =>
      p
        .locator(selector)
        .allInnerTexts()
        .then((t) => t.join(' | ').replace(/\s+/g, ' ').slice(0, 600))
        .catch((e: unknown) => `unreadable: ${String(e)}`);
    // What the pages show, for an error: the phase, the resume banner, the peer table, each worker.
    describe = async () => {
      const states = await Promise.all(workers.map((w) => text(w, '[data-testid="worker-phase-text"]')));
      return (
        `phase: [${await text(page, '.progress-card .pill')}]; banner: ` +
        `[${await text(page, '[data-testid="resumed"]')}]; peer table: ` +
        `[${await text(page, 'section.peers tbody tr')}]; worker pages: [${states.join('; ')}]; ` +
        `worker errors: [${workerErrors.join('; ')}]; dashboard errors: [${dashboardErrors.join('; ')}]; ` +
        `dashboard console:\n  ${dashboardConsole.join('\n  ')}\ndashboard log:\n  ${dashboardLog.join('\n  ')}`
      );
    };
    const idlePeers = (n: number) =>
      page.waitForFunction(
        (n) => document.querySelectorAll('section.peers tbody .pill.state-idle').length >= n,
        n,
        { timeout: LONG_WAIT_MS, polling: 250 },
      );
    await idlePeers(RELOAD_WORKERS);
    milestone('workers idle');

    await typeInto(formControl(page, 'workers'), RELOAD_FORM.workers);
    await formControl(page, 'model').selectOption(RELOAD_FORM.model);
    await formControl(page, 'dataset').selectOption(RELOAD_FORM.dataset);
    await typeInto(formControl(page, 'steps'), RELOAD_FORM.steps);
    const start = page.getByRole('button', { name: 'Start', exact: true });

    // The uninterrupted run.
    await start.click();
    const whole = await downloads(page, 'whole');
    milestone('uninterrupted run done');
    const uninterrupted = performance.now() - t0;

    // The same run again, paused once a checkpoint is stored, then the tab reloaded.
    await idlePeers(RELOAD_WORKERS);
    await start.click();
    // Paused from inside the page the moment the new run is running past the checkpoint at 10 (the
    // pill is the new run's: the old one's says done). A click from here lagged by seconds under
    // load, long enough for the run to end before it landed. (No named functions in the predicate:
    // tsx's __name helper does not exist in the page.)
    await page.waitForFunction(
      () => {
        const bar = document.querySelector('[role="progressbar"][aria-label="training progress"]');
        const running = document.querySelector('.progress-card .pill.phase-running');
        const pause = [...document.querySelectorAll('button')].find((b) => b.textContent?.trim() === 'Pause');
        if (!running || !pause || Number(bar?.getAttribute('aria-valuenow')) < 12) return false;
        pause.click();
        return true;
      },
      undefined,
      { timeout: LONG_WAIT_MS, polling: 20 },
    );
    milestone('second run past step 12: paused');
    await page.locator('.progress-card .pill.phase-paused').waitFor({ timeout: LONG_WAIT_MS });
    const pausedAt = await progress(page, 'aria-valuenow');
    milestone(`paused at step ${pausedAt}`);
    // The step-10 checkpoint went to IndexedDB when that step was reported (the page's own store;
    // reading it from the test hung here): a moment for the write to land before the reload.
    await page.waitForTimeout(1000);
    const marker = JSON.parse(
      (await page.evaluate((room) => localStorage.getItem(`peertrain-run:${room}`), RELOAD_ROOM)) ?? 'null',
    ) as ReloadCheckResult['marker'];
    milestone(`paused at ${pausedAt}, marker ${marker ? 'kept' : 'missing'}`);
    const before = page.url();
    const resumedAt = performance.now();
    if (MODE === 'reload') {
      await page.reload({ waitUntil: 'domcontentloaded' });
    } else {
      await page.close();
      page = await openDashboard();
      await page.goto(before, { waitUntil: 'domcontentloaded' });
    }
    // The workers wait meanwhile (they dial the coordinator's id until it is back).
    const workersWhileAway = await Promise.all(
      workers.map(async (w) => ((await w.getByTestId('worker-phase').textContent()) ?? '').trim()),
    );
    const banner = page.getByTestId('resumed');
    await banner.waitFor({ timeout: LONG_WAIT_MS });
    milestone(`${MODE === 'reload' ? 'reloaded' : 'reopened'}: workers ${workersWhileAway.join(', ')}`);
    // Running, or already done: resumed a few steps before the end, the run can finish between polls.
    await page
      .locator('.progress-card .pill.phase-running, .progress-card .pill.phase-done')
      .first()
      .waitFor({ timeout: LONG_WAIT_MS });
    milestone(`resumed run ${await phase(page)}`);
    const resumed = await downloads(page, 'resumed');
    const bannerText = ((await banner.textContent()) ?? '').trim();
    // The checkpoint the reloaded page resumed from, as its banner says (-1: it said none).
    const checkpointStep = Number(/after step (\d+) of/.exec(bannerText)?.[1] ?? -1);
    milestone('resumed run done');
    const screenshot = join(SCREENSHOTS, `dashboard-${MODE}-resumed.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    return {
      mode: MODE,
      marker,
      checkpointStep,
      pausedAt,
      urls: { before, after: page.url() },
      banner: bannerText,
      finalPhase: await phase(page),
      finalStep: await progress(page, 'aria-valuenow'),
      totalSteps: await progress(page, 'aria-valuemax'),
      workersWhileAway,
      whole,
      resumed,
      screenshot,
      dashboardErrors,
      workerErrors,
      ms: { uninterrupted, resumed: performance.now() - resumedAt, total: performance.now() - t0 },
    };
  } catch (err) {
    const seen = await Promise.race([
      describe().catch((e: unknown) => `pages unreadable: ${String(e)}`),
      new Promise<string>((r) => setTimeout(() => r('pages did not answer'), 10_000)),
    ]);
    throw new Error(`${err instanceof Error ? err.message : String(err)} (at: ${reached}); ${seen}`);
  } finally {
    // Teardown must not hang the check: each part gets a few seconds.
    const bounded = (p: Promise<unknown>): Promise<unknown> =>
      Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
    await bounded(browser.close());
    await bounded(stop(child));
  }
}

let timer: ReturnType<typeof setTimeout> | undefined;
try {
  const overdue = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`check took over ${CHECK_MS} ms; last: ${reached}`)), CHECK_MS);
  });
  process.stdout.write(`${JSON.stringify(await Promise.race([main(), overdue]))}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err instanceof Error ? err.stack : String(err) })}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
}
// A teardown still under way (the check ran over) must not keep the process alive.
process.exit();
