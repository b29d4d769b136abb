import type { Browser, Page } from 'playwright-core';
import { wheelFrames } from '@peertrain/harness';
import { median, quantile } from './metrics.ts';
import type { ChartFigure, DashboardPart, FrameStats } from './report.ts';

// Part 5: how the dashboard's views hold up under load, in the built gallery page
// (/apps/dashboard/gallery.html: the real components on synthetic runs, production React).
// The timeline: frame times while zooming in and out through 16 stages x 32 micro-batches x 8 steps
// of spans. The charts: frame times while the page takes a new step every 400 ms (live mode, as a
// running coordinator does) with 1,000 to 100,000 points in each chart.

export interface DashboardOptions {
  browser: Browser;
  baseUrl: string;
  /** How many steps the charts hold, one figure each. */
  chartPoints: readonly number[];
  /** How long each chart measurement records frames. */
  chartMs: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Median, p90, p99 and max of frame intervals (ms), and how many exceeded 50 ms (a long task). */
export function frameStats(deltas: readonly number[]): FrameStats {
  const s = [...deltas].sort((a, b) => a - b);
  return {
    frames: s.length,
    medianMs: median(s),
    p90Ms: quantile(s, 0.9),
    p99Ms: quantile(s, 0.99),
    maxMs: s.at(-1) ?? NaN,
    over50: s.filter((d) => d > 50).length,
  };
}

async function openGallery(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('.timeline-canvas');
  await page.waitForTimeout(500);
  if (errors.length > 0) throw new Error(`gallery page error: ${errors.join('; ')}`);
  return page;
}

/** Frame intervals while 90 wheel events (one a frame) zoom the timeline in, then out. */
async function zoomFrames(page: Page): Promise<number[]> {
  const zoomIn = await wheelFrames(page, '.timeline-canvas', { deltaY: -60, count: 45 });
  const zoomOut = await wheelFrames(page, '.timeline-canvas', { deltaY: 60, count: 45, x: 345 });
  return [...zoomIn, ...zoomOut];
}

/** Frame intervals for `ms`, and how many live steps the loss chart took in that time. */
async function liveFrames(page: Page, ms: number): Promise<{ deltas: number[]; updates: number }> {
  return page.evaluate(async (ms) => {
    const fig = document.querySelector('figure[aria-label="training loss"]');
    if (!fig) throw new Error('no loss chart');
    // No named functions in here: tsx would wrap them in a helper the page does not have.
    // data-steps: the steps the points cover (points merge past the cap, so they may not grow).
    const first = Number(fig.getAttribute('data-steps'));
    const deltas: number[] = [];
    const start = performance.now();
    let last = start;
    while (last - start < ms) {
      await new Promise((res) => requestAnimationFrame(res));
      const now = performance.now();
      deltas.push(now - last);
      last = now;
    }
    return { deltas, updates: Number(fig.getAttribute('data-steps')) - first };
  }, ms);
}

export async function measureDashboard(opts: DashboardOptions): Promise<DashboardPart> {
  const { browser, log, signal } = opts;
  const gallery = `${opts.baseUrl.replace(/\/$/, '')}/apps/dashboard/gallery.html`;
  const stages = 16;
  const microBatches = 32;
  const steps = 8;
  log(`dashboard: timeline zoom, ${stages} stages x ${microBatches} micro-batches x ${steps} steps`);
  const page = await openGallery(browser, `${gallery}?stages=${stages}&mb=${microBatches}&steps=${steps}`);
  let timeline: DashboardPart['timeline'];
  try {
    const header = (await page.locator('.timeline-card h2').textContent()) ?? '';
    const spans = Number(/([\d,]+) spans/.exec(header)?.[1]?.replace(/,/g, '') ?? NaN);
    timeline = { stages, microBatches, steps, spans, ...frameStats(await zoomFrames(page)) };
  } finally {
    await page.close();
  }
  const charts: ChartFigure[] = [];
  for (const points of opts.chartPoints) {
    // As the dashboard draws them (merged past MAX_CHART_POINTS), then one point per step.
    for (const merged of [true, false]) {
      signal?.throwIfAborted();
      const how = merged ? 'merged' : 'one point a step';
      log(`dashboard: charts with ${points.toLocaleString('en-US')} steps (${how}), a step every 400 ms`);
      const p = await openGallery(browser, `${gallery}?chart=${points}&live=1${merged ? '' : '&merge=0'}`);
      try {
        const { deltas, updates } = await liveFrames(p, opts.chartMs);
        const drawn = Number(
          await p.locator('figure[aria-label="training loss"]').getAttribute('data-points'),
        );
        charts.push({ points, merged, drawn, updates, ...frameStats(deltas) });
      } finally {
        await p.close();
      }
    }
  }
  return { timeline, charts, chartMs: opts.chartMs };
}
