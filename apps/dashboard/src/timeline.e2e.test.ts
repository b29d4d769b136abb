import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import type { Browser, Page } from 'playwright-core';
import { REPO_ROOT, launchBrowser, wheelFrames } from '@peertrain/harness';

// The pipeline views in real Chromium, on the gallery page's synthetic GPipe spans (served by
// Vite's dev server here; the build has the page too, for the benchmark). Screenshots land in
// .artifacts/screenshots/dashboard-*.png.

const SCREENSHOTS = join(REPO_ROOT, '.artifacts/screenshots');

let server: ViteDevServer;
let browser: Browser;
let base: string;

beforeAll(async () => {
  server = await createServer({
    root: REPO_ROOT,
    // Its own pre-bundled dependencies: `npm start` servers of other checks may bundle beside it
    // into the default directory with other plugins (VITE_CACHE_DIR_ENV says what that does).
    cacheDir: join(REPO_ROOT, 'node_modules/.vite/timeline-e2e'),
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite did not say where it listens');
  base = `${url.replace(/\/$/, '')}/apps/dashboard/gallery.html`;
  browser = await launchBrowser();
  await mkdir(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(query: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}${query}`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.timeline-canvas');
  // Until the first frame of spans is drawn (a loaded machine draws late).
  await expect.poll(async () => (await colourCounts(page)).forward, { timeout: 10_000 }).toBeGreaterThan(0);
  expect(errors).toEqual([]);
  return page;
}

/** Pixels of the canvas close to each span colour (forward blue, backward amber). */
async function colourCounts(page: Page): Promise<{ forward: number; backward: number; hash: number }> {
  return page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('.timeline-canvas');
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return { forward: -1, backward: -1, hash: 0 };
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const near = (i: number, r: number, g: number, b: number): boolean =>
      Math.abs((d[i] ?? 0) - r) + Math.abs((d[i + 1] ?? 0) - g) + Math.abs((d[i + 2] ?? 0) - b) < 30;
    let forward = 0;
    let backward = 0;
    let hash = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (near(i, 0x3b, 0x82, 0xf6)) forward++;
      if (near(i, 0xf5, 0x9e, 0x0b)) backward++;
      hash = (hash * 31 + (d[i] ?? 0) + (d[i + 1] ?? 0) * 7) >>> 0;
    }
    return { forward, backward, hash };
  });
}

describe('pipeline timeline in Chromium', () => {
  it('draws the spans, pans, zooms, follows and explains a span on hover', async () => {
    const page = await open('?stages=4&mb=8&steps=3');
    const canvas = page.locator('.timeline-canvas');
    const follow = page.getByRole('button', { name: /follow live/i });
    expect(await follow.getAttribute('aria-pressed')).toBe('true');

    const first = await colourCounts(page);
    expect(first.forward).toBeGreaterThan(500);
    expect(first.backward).toBeGreaterThan(500);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-gallery.png'), fullPage: true });

    // Wheel up over the plot: zoomed in, the picture changes and following stops.
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.45, box.y + 40);
    for (let i = 0; i < 6; i++) await page.mouse.wheel(0, -300);
    // Until the next frame is drawn (a loaded machine draws late).
    const hashNow = async () => (await colourCounts(page)).hash;
    await expect.poll(hashNow, { timeout: 10_000 }).not.toBe(first.hash);
    const zoomed = await colourCounts(page);
    expect(await follow.getAttribute('aria-pressed')).toBe('false');

    // Hover a compute span of the first peer: a tooltip names it.
    let tip = '';
    for (let x = box.x + 150; x < box.x + box.width - 20 && tip === ''; x += 15) {
      await page.mouse.move(x, box.y + 40);
      tip =
        (await page
          .locator('.timeline-tip')
          .textContent({ timeout: 100 })
          .catch(() => null)) ?? '';
    }
    expect(tip).toMatch(/(forward|backward|optimizer).*peer.*w-s0.*step.*duration/);
    await page
      .locator('.timeline-card')
      .screenshot({ path: join(SCREENSHOTS, 'dashboard-timeline-zoom.png') });

    // Drag right: the view moves back in time.
    await page.mouse.move(box.x + 400, box.y + 60);
    await page.mouse.down();
    await page.mouse.move(box.x + 600, box.y + 60, { steps: 5 });
    await page.mouse.up();
    await expect.poll(hashNow, { timeout: 10_000 }).not.toBe(zoomed.hash);

    // Follow live again: back to the last steps, as at the start.
    await follow.click();
    expect(await follow.getAttribute('aria-pressed')).toBe('true');
    await expect.poll(hashNow, { timeout: 10_000 }).toBe(first.hash);

    // The side panel: bubble measured vs theory, and a legend of the kinds present.
    const side = (await page.locator('.timeline-side').textContent()) ?? '';
    expect(side).toMatch(/measured\s*33\.3%/);
    expect(side).toMatch(/theory\s*27\.3%/);
    expect(side).toMatch(/forward.*backward.*optimizer.*send.*recv/);
    await page.close();
  }, 120_000);

  // How fast it draws is measured by the benchmark (npm run bench -- --only dashboard), not here.
  it('zooms through 23,680 spans, one wheel event a frame', async () => {
    const page = await open('?stages=16&mb=32&steps=8');
    const header = (await page.locator('.timeline-card h2').textContent()) ?? '';
    expect(header).toMatch(/23,680 spans/);
    const before = await colourCounts(page);
    const wheel = (deltaY: number) => wheelFrames(page, '.timeline-canvas', { deltaY, count: 45 });
    await wheel(-60);
    const zoomed = await colourCounts(page);
    expect(zoomed.hash).not.toBe(before.hash);
    // Zoomed in, spans are still drawn (the view did not zoom past the run into empty time).
    expect(zoomed.forward + zoomed.backward).toBeGreaterThan(0);
    await wheel(60);
    expect((await colourCounts(page)).hash).not.toBe(zoomed.hash);
    await page.close();
  }, 120_000);

  it('stays usable with 16 peers: table, 16 timeline lanes, charts and topology', async () => {
    const page = await open('?stages=16&mb=16&steps=4&chart=2000');
    // The charts: one figure each, named, with their point counts.
    const charts = [
      'training loss',
      'test accuracy',
      'samples per second',
      'utilization per peer',
      'bytes per step',
    ];
    for (const name of charts) {
      const fig = page.getByRole('figure', { name });
      expect(Number(await fig.getAttribute('data-points'))).toBeGreaterThan(0);
    }
    const loss = page.getByRole('figure', { name: 'training loss' });
    // 2,004 steps: past MAX_CHART_POINTS (1,024) a point is the mean of 2 steps, and the title says so.
    expect(await loss.getAttribute('data-steps')).toBe('2004');
    expect(await loss.getAttribute('data-points')).toBe('1002');
    expect(await loss.locator('figcaption').textContent()).toContain(
      '2 steps per point · shaded: lowest to highest',
    );
    // Utilization: a line (legend entry) per peer.
    expect(
      await page.getByRole('figure', { name: 'utilization per peer' }).locator('.u-series').count(),
    ).toBe(16);
    // Steps / time toggle: the loss chart's x axis changes, its points stay.
    const before = await loss.locator('canvas').screenshot();
    await page.getByRole('button', { name: 'time' }).click();
    expect(await page.getByRole('button', { name: 'time' }).getAttribute('aria-pressed')).toBe('true');
    const redrawn = async () => (await loss.locator('canvas').screenshot()).equals(before);
    await expect.poll(redrawn, { timeout: 10_000 }).toBe(false);
    expect(await loss.getAttribute('data-points')).toBe('1002');
    await page.getByRole('button', { name: 'steps' }).click();

    // Peer table: 16 rows with the telemetry cells, no wider than the page at 1400 px.
    const rows = page.locator('section.peers tbody tr');
    expect(await rows.count()).toBe(16);
    expect(await rows.first().locator('[data-col="memory"]').textContent()).toMatch(
      /^[\d.]+ (kB|MB) [\d.]+k params \+ \d+ tensors$/,
    );
    expect(await rows.first().locator('[data-col="link"]').textContent()).toMatch(/^[\d.]+ ms [\d.]+ MB\/s$/);
    expect(await rows.first().locator('[data-col="device"]').getAttribute('title')).toMatch(
      /adapter: vendor=apple/,
    );
    expect(await page.locator('section.peers .pill.state-stalled').count()).toBe(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-16-peers.png'), fullPage: true });
    const overflow = await page.evaluate(() => {
      const scroll = document.querySelector('section.peers .table-scroll');
      const table = scroll?.querySelector('table');
      if (!scroll || !table) return 1;
      // The table's natural width (width: auto) against the room it has.
      table.style.width = 'auto';
      const natural = table.getBoundingClientRect().width;
      table.style.width = '';
      return natural - scroll.clientWidth;
    });
    // Fits, with room to spare for real peer ids (w- and 8 characters, a few more than w-s10).
    expect(overflow).toBeLessThanOrEqual(-30);
    const timeline = (await page.locator('.timeline-canvas').getAttribute('aria-label')) ?? '';
    expect(timeline).toMatch(/^timeline of 16 peers/);
    expect(await page.locator('.topology svg .node').count()).toBe(16);
    // 30 links: their rates go to tooltips and one summary line instead of overlapping labels.
    expect(await page.locator('.topology svg .edge-label').count()).toBe(0);
    expect(await page.locator('.topology-summary').textContent()).toMatch(
      /^30 links, .* fastest w-s\d+ → w-s\d+ /,
    );
    await page
      .locator('.topology')
      .screenshot({ path: join(SCREENSHOTS, 'dashboard-16-peers-topology.png') });
    await page
      .locator('.run-charts')
      .screenshot({ path: join(SCREENSHOTS, 'dashboard-16-peers-charts.png') });
    await page.close();
  }, 120_000);

  it('shows the topology of a pipeline with its send rates', async () => {
    const page = await open('?stages=3&mb=4&steps=2');
    const svg = page.locator('.topology svg');
    expect(await svg.locator('.node').count()).toBe(3);
    // Stage 0 <-> 1 and 1 <-> 2, both ways.
    expect(await svg.locator('.edge').count()).toBe(4);
    expect(await svg.locator('.edge-label').first().textContent()).toMatch(/^\d+(\.\d+)? (kB|MB)\/s$/);
    await page.locator('.topology').screenshot({ path: join(SCREENSHOTS, 'dashboard-topology.png') });
    await page.close();
  }, 60_000);
});
