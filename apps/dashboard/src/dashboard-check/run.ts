// Inside a private network namespace (spawned by dashboard.e2e.test.ts): starts `npm start`
// (apps/signal) on free ports, opens the interactive dashboard and 4 worker tabs through the
// dashboard's own worker link, sets up a 4-stage 1F1B pipeline by clicking and typing in the Run
// form, reads the peer table, timeline and loss chart while it trains, saves screenshots, then
// clicks the report's trace and model exports and saves the downloads. Prints one JSON line
// (DashboardCheckResult, or { error }) on stdout; what it saw is judged by the test.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { REPO_ROOT, launchBrowser } from '@peertrain/harness';
import { formControl, save as saveIn, startServer, stop, typeInto } from './page.ts';
import {
  FORM,
  ROOM,
  VIEWPORT,
  WORKERS,
  type CanvasPixels,
  type DashboardCheckResult,
  type LiveView,
  type PlanCheck,
} from './check.ts';

const SCREENSHOTS = join(REPO_ROOT, '.artifacts/screenshots');
/** The exported trace and model files land here (replaced on every run). */
const DOWNLOADS = join(REPO_ROOT, '.artifacts/dashboard-check');
/** Waits are generous (2 shared cores, a cold Vite dev server); speed is not what is tested here. */
const LONG_WAIT_MS = 180_000;

const save = (d: Parameters<typeof saveIn>[0]) => saveIn(d, DOWNLOADS);

/** RGB of the colours counted: forward blue #3b82f6, backward amber #f59e0b, loss line #2563eb. */
const COLOURS = {
  forward: [0x3b, 0x82, 0xf6],
  backward: [0xf5, 0x9e, 0x0b],
  line: [0x25, 0x63, 0xeb],
} as const;

/**
 * Counts the pixels of `canvas` that are inked, or near the colours the test looks for. (No named
 * functions inside: tsx would wrap them in a `__name` helper the page does not have.)
 */
function canvasPixels(canvas: Locator): Promise<CanvasPixels> {
  return canvas.evaluate((c: HTMLCanvasElement, colours) => {
    const ctx = c.getContext('2d');
    const out = { width: c.width, height: c.height, inked: 0, forward: 0, backward: 0, line: 0 };
    if (!ctx || c.width === 0 || c.height === 0) return out;
    const d = ctx.getImageData(0, 0, c.width, c.height).data; // [h * w * 4] RGBA
    const kinds = ['forward', 'backward', 'line'] as const;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i]!, d[i + 1]!, d[i + 2]!, d[i + 3]!];
      if (a > 32 && !(r > 245 && g > 245 && b > 245)) out.inked++;
      if (a <= 200) continue;
      for (const k of kinds) {
        const [cr, cg, cb] = colours[k];
        if (Math.abs(r - cr) + Math.abs(g - cg) + Math.abs(b - cb) < 40) out[k]++;
      }
    }
    return out;
  }, COLOURS);
}

/** Step shown by the dashboard's progress bar. */
async function progressStep(page: Page): Promise<number> {
  return Number(
    await page.getByRole('progressbar', { name: 'training progress' }).getAttribute('aria-valuenow'),
  );
}

/** The run's phase pill and the progress bar's step. */
async function phaseAndStep(page: Page): Promise<{ phase: string; step: number }> {
  const phase = (await page.locator('.progress-card .pill').first().textContent()) ?? '';
  return { phase: phase.trim(), step: await progressStep(page) };
}

/** Waits until the progress bar reaches `step` (or the run ends), polling slowly. */
async function waitForStep(page: Page, step: number): Promise<void> {
  await page.waitForFunction(
    (step) => {
      const bar = document.querySelector('[role="progressbar"][aria-label="training progress"]');
      const done = document.querySelector(
        '.progress-card .pill.phase-done, .progress-card .pill.phase-failed',
      );
      return done !== null || Number(bar?.getAttribute('aria-valuenow')) >= step;
    },
    step,
    { timeout: LONG_WAIT_MS, polling: 250 },
  );
}

/**
 * Presses Pause and waits for the paused pill; when it never shows, says where the run was instead
 * (still running at a step, failed and why, or done).
 */
async function pauseRun(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page
    .locator('.progress-card .pill.phase-paused')
    .waitFor({ timeout: LONG_WAIT_MS })
    .catch(async (e: unknown) => {
      const { phase, step } = await phaseAndStep(page);
      const alerts = await page.getByRole('alert').allTextContents();
      throw new Error(
        `not paused after ${LONG_WAIT_MS} ms: phase "${phase}" at step ${step}; alerts: ${JSON.stringify(alerts)} (${String(e)})`,
      );
    });
}

/** Peer table and timeline, read in one go. */
async function readLive(page: Page): Promise<LiveView> {
  const table = await page.locator('section.peers').evaluate((section) => {
    const heads = [...section.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    const rows = [...section.querySelectorAll('tbody tr')].map((tr) =>
      [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
    );
    // Compact cells by name, each line of a two-line cell apart ("1.2 MB", "24 tensors").
    const cells = [...section.querySelectorAll('tbody tr')].map((tr) =>
      Object.fromEntries(
        [...tr.querySelectorAll('td[data-col]')].map((td) => [
          td.getAttribute('data-col') ?? '',
          (td as HTMLElement).innerText
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== ''),
        ]),
      ),
    );
    return { heading: section.querySelector('h2')?.textContent.trim() ?? '', heads, rows, cells };
  });
  const column = (name: string): string[] => {
    const at = table.heads.indexOf(name);
    return table.rows.map((row) => (at < 0 ? '' : (row[at] ?? '')));
  };
  const timeline = page.locator('.timeline-canvas');
  return {
    step: await progressStep(page),
    roles: column('role'),
    layers: column('layers'),
    peersHeading: table.heading,
    timelineLabel: (await timeline.getAttribute('aria-label')) ?? '',
    timeline: await canvasPixels(timeline),
    cells: table.cells,
    charts: await chartPoints(page),
  };
}

/** Each run chart's name (its aria-label) and how many x values it plots. */
function chartPoints(page: Page): Promise<Record<string, number>> {
  return page
    .locator('figure.chart[data-points]')
    .evaluateAll((fs) =>
      Object.fromEntries(
        fs.map((f) => [f.getAttribute('aria-label') ?? '', Number(f.getAttribute('data-points'))]),
      ),
    );
}

/**
 * Presses Auto-plan, reads the proposal, screenshots the plan editor, then drags one boundary
 * handle one layer with the mouse (the first handle that can move right, else left).
 */
async function planAndDrag(page: Page, shot: string): Promise<PlanCheck> {
  await page.getByRole('button', { name: 'Auto-plan', exact: true }).click();
  const editor = page.getByRole('group', { name: 'plan editor' });
  const stageCards = editor.locator('li.plan-stage');
  // Profiling runs on each stage's device in turn; the figures appear with the preview.
  await editor.locator('.plan-step').waitFor({ timeout: LONG_WAIT_MS });
  const stages = await stageCards.evaluateAll((lis) =>
    lis.map((li) => ({
      head: li.querySelector('.plan-stage-head')?.textContent.trim() ?? '',
      ms: li.querySelector('.plan-ms')?.textContent.trim() ?? '',
      mem: li.querySelector('.plan-mem')?.textContent.trim() ?? '',
    })),
  );
  const step = ((await editor.locator('.plan-step').textContent()) ?? '').trim();
  const partition = formControl(page, 'partition');
  const partitionBefore = await partition.inputValue();
  const handles = editor.getByRole('slider');
  const readHandles = (): Promise<number[]> =>
    handles.evaluateAll((hs) => hs.map((h) => Number(h.getAttribute('aria-valuenow'))));
  const handlesBefore = await readHandles();
  await page.getByRole('group', { name: 'pipeline settings' }).screenshot({ path: shot });

  const layerCount = await editor.locator('.plan-layer').count();
  const strip = await editor.locator('.plan-strip').boundingBox();
  let dragged: PlanCheck['dragged'] | null = null;
  for (let k = 0; k < handlesBefore.length && dragged === null; k++) {
    const max = Number(await handles.nth(k).getAttribute('aria-valuemax'));
    const min = Number(await handles.nth(k).getAttribute('aria-valuemin'));
    const from = handlesBefore[k]!;
    if (from + 1 <= max) dragged = { handle: k, from, to: from + 1 };
    else if (from - 1 >= min) dragged = { handle: k, from, to: from - 1 };
  }
  if (dragged === null || strip === null) throw new Error(`no handle can move: ${handlesBefore.join(',')}`);
  const box = await handles.nth(dragged.handle).boundingBox();
  if (box === null) throw new Error('boundary handle not visible');
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width / 2, y);
  await page.mouse.down();
  // Through the strip to the target cut, in small steps as a hand would.
  await page.mouse.move(strip.x + (strip.width * dragged.to) / layerCount, y, { steps: 8 });
  await page.mouse.up();
  const handlesAfter = await readHandles();
  const partitionAfter = await partition.inputValue();
  const msAfter = await stageCards.evaluateAll((lis) =>
    lis.map((li) => li.querySelector('.plan-ms')?.textContent.trim() ?? ''),
  );
  return {
    stages,
    step,
    partitionBefore,
    handlesBefore,
    handlesAfter,
    dragged,
    partitionAfter,
    layerCount,
    msAfter,
  };
}

async function main(): Promise<DashboardCheckResult> {
  const signal = AbortSignal.timeout(400_000);
  const t0 = performance.now();
  const since = (): number => performance.now() - t0;
  await mkdir(SCREENSHOTS, { recursive: true });
  await rm(DOWNLOADS, { recursive: true, force: true });
  await mkdir(DOWNLOADS, { recursive: true });
  const { child, links } = await startServer(ROOM, 'dashboard-check', signal);
  const browser = await launchBrowser({ signal });
  try {
    const serverUp = since();

    // The interactive dashboard (no config in the URL: nothing runs until Start is clicked).
    const dashCtx = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    const page = await dashCtx.newPage();
    const dashboardErrors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && dashboardErrors.push(m.text())));
    page.on('pageerror', (e) => dashboardErrors.push(`${e.name}: ${e.message}`));
    await page.goto(links.dashboard, { waitUntil: 'domcontentloaded' });
    await page.getByText('coordinator online').waitFor({ timeout: LONG_WAIT_MS });

    // Workers join through the link the dashboard shows (the one npm start printed too).
    const shared = await page.getByRole('textbox', { name: 'worker link' }).inputValue();
    const workerErrors: string[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const worker = await (await browser.newContext()).newPage();
      worker.on('pageerror', (e) => workerErrors.push(`worker ${i}: ${e.name}: ${e.message}`));
      await worker.goto(shared, { waitUntil: 'domcontentloaded' });
    }
    await page
      .locator('section.peers h2', { hasText: `(${WORKERS} connected)` })
      .waitFor({ timeout: LONG_WAIT_MS });
    // Each worker measures its backends before it is idle; a pipeline needs all 4 ready.
    await page.waitForFunction(
      (n) => document.querySelectorAll('section.peers tbody .pill.state-idle').length >= n,
      WORKERS,
      { timeout: LONG_WAIT_MS, polling: 250 },
    );
    const peersJoined = since();

    // Data parallelism (the form's default): each worker's shard, sized by hand.
    const shardGroup = page.getByRole('group', { name: 'data shards' });
    const readShards = (): Promise<string[]> =>
      shardGroup.locator('input').evaluateAll((xs) => xs.map((x) => (x as HTMLInputElement).value));
    const shardsBefore = await readShards();
    await typeInto(shardGroup.getByRole('textbox', { name: 'samples of worker 0' }), '1000');
    const shards = { before: shardsBefore, after: await readShards() };
    const shardsShot = join(SCREENSHOTS, 'dashboard-shards.png');
    await shardGroup.screenshot({ path: shardsShot });

    // The run, by clicking and typing in the Run form.
    await formControl(page, 'strategy').selectOption(FORM.strategy);
    await typeInto(formControl(page, 'workers'), FORM.workers);
    await formControl(page, 'model').selectOption(FORM.model);
    await formControl(page, 'dataset').selectOption(FORM.dataset);
    await typeInto(formControl(page, 'steps'), FORM.steps);
    await formControl(page, 'schedule').selectOption(FORM.schedule);
    await typeInto(formControl(page, 'micro-batches'), FORM.microBatches);
    const shape = (
      (await page.locator('form.run-form p.shape').textContent({ timeout: 5_000 })) ?? ''
    ).trim();
    const planShot = join(SCREENSHOTS, 'dashboard-plan.png');
    const plan = await planAndDrag(page, planShot);
    const start = page.getByRole('button', { name: 'Start', exact: true });
    await start.click();
    await page.locator('.progress-card .pill.phase-running').waitFor({ timeout: LONG_WAIT_MS });
    const started = since();
    const totalSteps = Number(
      await page.getByRole('progressbar', { name: 'training progress' }).getAttribute('aria-valuemax'),
    );

    // While it trains: the loss chart early, then peers, timeline and chart again later on.
    const lossChart = page.locator('figure.chart', { hasText: 'Training loss' });
    // Each reading is taken paused, as a person would to look closely: under load (beside two other
    // sessions) readings taken while it ran outlasted the rest of the run.
    await waitForStep(page, 8);
    await pauseRun(page);
    const lossCanvas = lossChart.locator('canvas').first();
    const lossEarly = { step: await progressStep(page), pixels: await canvasPixels(lossCanvas) };
    const chartsEarly = await chartPoints(page);
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForStep(page, lossEarly.step + 12);
    await pauseRun(page);
    // Spans reach the coordinator a little after their step; let a frame or two draw them.
    await page.waitForTimeout(500);
    const live = await readLive(page);
    const lossLater = { step: await progressStep(page), pixels: await canvasPixels(lossCanvas) };
    const liveShot = join(SCREENSHOTS, 'dashboard-pipeline-live.png');
    const before = await phaseAndStep(page);
    await page.screenshot({ path: liveShot, fullPage: true });
    await page.waitForTimeout(1000); // a paused run takes no step meanwhile
    const after = await phaseAndStep(page);
    await page.getByRole('button', { name: 'Resume', exact: true }).click();

    // After it ends: the report, then its exports.
    await page.locator('section.report').waitFor({ timeout: LONG_WAIT_MS });
    const finished = since();
    const finalPhase = (await phaseAndStep(page)).phase;
    const report = page.locator('section.report');
    const reportHeading = ((await report.locator('h2').first().textContent()) ?? '').trim();
    const pipelineHeading = ((await report.locator('.report-pipeline h3').textContent()) ?? '').trim();
    const reportStats = await report
      .locator('dl.stats')
      .first()
      .evaluate((dl) =>
        Object.fromEntries(
          [...dl.querySelectorAll(':scope > div')].map((d) => [
            d.querySelector('dt')?.textContent.trim() ?? '',
            d.querySelector('dd')?.textContent.trim() ?? '',
          ]),
        ),
      );
    const reportStages = await report
      .locator('.report-pipeline tbody tr')
      .evaluateAll((rows) =>
        rows.map((tr) => [...tr.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent.trim())),
      );

    // Report JSON: what the run did, per stage its layers (the dragged partition).
    const reportDownload = page.waitForEvent('download', { timeout: LONG_WAIT_MS });
    await page.getByRole('button', { name: 'Report JSON', exact: true }).click();
    const reportFile = await save(await reportDownload);
    // Trace (Perfetto): one download, the run's spans as Chrome trace JSON.
    const traceDownload = page.waitForEvent('download', { timeout: LONG_WAIT_MS });
    await page.getByTestId('export-trace').click();
    const trace = await save(await traceDownload);
    // Model (TF.js): two downloads, model.json then weights.bin (the engine loads on first click).
    const exportModel = page.getByTestId('export-model');
    await exportModel.waitFor({ timeout: 60_000 });
    const named = (name: string) =>
      page.waitForEvent('download', {
        predicate: (d) => d.suggestedFilename() === name,
        timeout: LONG_WAIT_MS,
      });
    const jsonDownload = named('model.json');
    const weightsDownload = named('weights.bin');
    await exportModel.click();
    const modelJson = await save(await jsonDownload);
    const weights = await save(await weightsDownload);

    const chartsDone = await chartPoints(page);
    const doneShot = join(SCREENSHOTS, 'dashboard-pipeline-done.png');
    await page.screenshot({ path: doneShot, fullPage: true });

    return {
      dashboardUrl: links.dashboard,
      workerUrl: shared,
      shape,
      totalSteps,
      live,
      liveShot: { before, after },
      lossEarly,
      lossLater,
      chartsEarly,
      chartsDone,
      finalPhase,
      reportHeading,
      pipelineHeading,
      reportStats,
      reportStages,
      plan,
      shards,
      downloads: { report: reportFile, trace, modelJson, weights },
      screenshots: { shards: shardsShot, plan: planShot, live: liveShot, done: doneShot },
      dashboardErrors,
      workerErrors,
      ms: { serverUp, peersJoined, started, finished, total: since() },
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
