import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'vite';
import type { ViteDevServer } from 'vite';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import { launchBrowser } from './browser.ts';

// Tab links (transport tab-links.ts) in real Chromium: the SharedWorker broker, MessagePorts between
// tabs of one profile and the Web Locks that tell a tab's death. No network is involved, so no
// namespace: the check page's inner transport reaches no one.

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');

interface Check {
  compliance(): Promise<ComplianceResult[]>;
  open(id: string): Promise<void>;
  dial(id: string): Promise<string | undefined>;
  closed(): { name: string; message: string; ms: number } | null;
}

let vite: ViteDevServer;
let browser: Browser;
let ctx: BrowserContext;
let url = '';

beforeAll(async () => {
  vite = await createServer({
    configFile: false,
    root: join(here, 'tab-links-check'),
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, fs: { allow: [repo] } },
  });
  await vite.listen();
  const address = vite.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not listen');
  url = `http://127.0.0.1:${address.port}/index.html`;
  browser = await launchBrowser();
  ctx = await browser.newContext(); // one profile: its tabs share one broker
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await vite?.close();
});

async function tab(): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(() => '__tabLinks' in globalThis, undefined, { timeout: 180_000 });
  return page;
}

/** The check page's object in `page`: `method(arg)` there. */
function call<K extends keyof Check>(
  page: Page,
  method: K,
  arg = '',
): Promise<Awaited<ReturnType<Check[K]>>> {
  return page.evaluate(
    ([m, a]) => {
      const c = (globalThis as unknown as { __tabLinks: Record<string, (x: string) => unknown> }).__tabLinks;
      return c[m]!(a);
    },
    [method, arg] as const,
  ) as Promise<Awaited<ReturnType<Check[K]>>>;
}

/** Polls `page`'s dialled link until it has closed. */
async function closedLink(page: Page): Promise<{ name: string; message: string; ms: number }> {
  for (let i = 0; i < 100; i++) {
    const c = await call(page, 'closed');
    if (c) return c;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the link never closed');
}

describe('tab links in Chromium', () => {
  it('pass every transport compliance case through the real broker', async () => {
    const page = await tab();
    const results = await call(page, 'compliance');
    const failed = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.error ?? ''}`);
    expect(failed).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(16);
    console.log(
      results.map((r) => `${r.name} ${r.ms.toFixed(0)} ms${r.note ? ` (${r.note})` : ''}`).join('\n'),
    );
    await page.close();
  }, 300_000);

  it('a tab that crashes: its links close with PeerLostError at once (its lock comes free); a tab that closes says so', async () => {
    const [a, b, c] = [await tab(), await tab(), await tab()];
    await call(a, 'open', 'a');
    await call(b, 'open', 'b');
    await call(c, 'open', 'c');
    expect(await call(a, 'dial', 'b')).toBe('tab');
    expect(await call(c, 'dial', 'a')).toBe('tab');
    // A renderer crash runs no page code at all: no pagehide, nothing said on the port.
    const cdp = await ctx.newCDPSession(b);
    void cdp.send('Page.crash').catch(() => undefined);
    const crashed = await closedLink(a);
    expect(crashed.name).toBe('PeerLostError');
    expect(crashed.message).toMatch(/tab is gone/);
    // A tab closed as a person closes it: pagehide says so on its ports.
    await a.close();
    const left = await closedLink(c);
    expect(left.name).toBe('closed');
    console.log(`crash noticed after ${crashed.ms} ms; a closed tab after ${left.ms} ms`);
    await c.close();
  }, 120_000);
});
