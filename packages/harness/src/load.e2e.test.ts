import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchBrowser } from './browser.ts';
import { PAGE_RELOADS, loadPage } from './load.ts';
import { startStaticServer } from './static-server.ts';
import type { StaticServer } from './static-server.ts';

// loadPage in real Chromium against the real static server. Chromium's ERR_NETWORK_CHANGED cannot
// be injected (Playwright aborts requests with a fixed set of errors), so the tests retry on
// ERR_CONNECTION_RESET, which a route can produce, through the same `retryOn` the session uses.
const RESET = /ERR_CONNECTION_RESET/;

let browser: Browser;
let web: StaticServer;
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peertrain-load-'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><script type="module" src="/app.js"></script>');
  await writeFile(join(dir, 'app.js'), 'window.started = (window.started ?? 0) + 1;');
  web = await startStaticServer({ root: dir, signalInfo: { port: 1, path: '/', secure: false } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await web?.close();
  await rm(dir, { recursive: true, force: true });
});

let ctx: BrowserContext;
let page: Page;
let documents = 0;
const logged: string[] = [];
/** Resets the first `n` requests for `path` (then serves them). */
async function resetFirst(path: string, n: number): Promise<void> {
  let left = n;
  await page.route(`**${path}`, (route) => (left-- > 0 ? route.abort('connectionreset') : route.continue()));
}
beforeEach(async () => {
  ctx = await browser.newContext();
  page = await ctx.newPage();
  documents = 0;
  logged.length = 0;
  page.on('request', (req) => {
    if (req.isNavigationRequest()) documents++;
  });
});
afterEach(async () => {
  await ctx.close();
});
const started = (): Promise<number> => page.evaluate(() => (window as { started?: number }).started ?? 0);
const log = (line: string): number => logged.push(line);

describe('loadPage', () => {
  it('loads again when a script of the load was lost, and the page then starts', async () => {
    await resetFirst('/app.js', 1);
    const res = await loadPage(page, web.url, { retryOn: RESET, log });
    expect(res?.ok()).toBe(true);
    expect(documents).toBe(2);
    expect(await started()).toBe(1);
    expect(logged).toEqual([`loading again after net::ERR_CONNECTION_RESET on ${web.url}app.js`]);
  });

  it('loads again when the document itself was lost', async () => {
    await resetFirst('/', 1);
    const res = await loadPage(page, web.url, { retryOn: RESET, log });
    expect(res?.ok()).toBe(true);
    expect(documents).toBe(2);
    expect(await started()).toBe(1);
  });

  it(`stops after ${PAGE_RELOADS} loads more: a lost document rejects, a lost script resolves unstarted`, async () => {
    await resetFirst('/', 99);
    await expect(loadPage(page, web.url, { retryOn: RESET, log })).rejects.toThrow(/ERR_CONNECTION_RESET/);
    expect(documents).toBe(1 + PAGE_RELOADS);
    await page.unrouteAll();
    await resetFirst('/app.js', 99);
    documents = 0;
    expect((await loadPage(page, web.url, { retryOn: RESET }))?.ok()).toBe(true);
    expect(documents).toBe(1 + PAGE_RELOADS);
    expect(await started()).toBe(0);
  });

  it('does not load again once the page may have started, nor for other errors', async () => {
    await resetFirst('/app.js', 1);
    await loadPage(page, web.url, { retryOn: RESET, reloadable: () => false });
    expect(documents).toBe(1);
    expect(await started()).toBe(0);
    await page.unrouteAll();
    await page.route('**/', (route) => route.abort('connectionrefused'));
    documents = 0;
    await expect(loadPage(page, web.url, { retryOn: RESET })).rejects.toThrow(/ERR_CONNECTION_REFUSED/);
    expect(documents).toBe(1);
  });

  it('retries on ERR_NETWORK_CHANGED by default, on nothing else', async () => {
    await resetFirst('/', 1);
    await expect(loadPage(page, web.url)).rejects.toThrow(/ERR_CONNECTION_RESET/);
    expect(documents).toBe(1);
  });
});
