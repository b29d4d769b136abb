import { createServer } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

/*
 * Worker tabs that are really in the background (`--chaos hide=N`): document.visibilityState is
 * 'hidden' and Chrome's background throttling applies (timers aligned to 1 s, no animation frames),
 * as for a volunteer's tab behind another one. Measured in headless Chromium 156, both the headless
 * shell and `chromium --headless=new`:
 *
 * - A page Playwright opens is never hidden: Playwright turns on CDP focus emulation for every page
 *   it attaches to, and Chromium keeps an emulated-focus page visible (it counts as captured).
 *   Minimizing its window, Target.createTarget {background: true} and bringToFront of another tab
 *   all left it 'visible'.
 * - Playwright also launches Chromium with --disable-background-timer-throttling,
 *   --disable-backgrounding-occluded-windows and --disable-renderer-backgrounding: even a hidden
 *   page then runs setTimeout(0) chains at full rate (~240/s), not at a real browser's 1/s.
 * - What works: launch without those three flags and with a DevTools port, connect a second time
 *   over CDP with `noDefaults` (no focus emulation for pages of the browser's default context),
 *   open the tab there and minimize its window. Then visibilityState is 'hidden', a setTimeout(0)
 *   chain runs ~2 times a second, requestAnimationFrame never fires, and MessageChannel messages
 *   still run at full rate. Visible tabs keep focus emulation, so the flags change nothing for them.
 */

/** Playwright's default flags that switch background throttling off (dropped when tabs are hidden). */
export const BACKGROUND_THROTTLING_OFF: readonly string[] = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
];

/** A free TCP port on 127.0.0.1 (for the DevTools endpoint the hidden tabs are opened through). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The extra launch flags for a browser whose hidden tabs are opened through `port`. */
export function devtoolsPortArgs(port: number): string[] {
  return [`--remote-debugging-port=${port}`, '--remote-debugging-address=127.0.0.1'];
}

/**
 * What a browser needs for `hide` hidden tabs (null for none): launch it with `args` and
 * `backgroundThrottling`, then give runSession `devtoolsPort: port` (when it gets the browser passed in).
 */
export async function hiddenTabLaunch(
  hide: number,
): Promise<{ port: number; args: string[]; backgroundThrottling: true } | null> {
  if (hide <= 0) return null;
  const port = await freePort();
  return { port, args: devtoolsPortArgs(port), backgroundThrottling: true };
}

/** Opens hidden tabs in a browser launched with devtoolsPortArgs(port) and background throttling on. */
export class HiddenTabs {
  private readonly pages: Page[] = [];

  private constructor(private readonly connection: Browser) {}

  static async connect(port: number): Promise<HiddenTabs> {
    // noDefaults: pages of the default context get no focus emulation (see the top of this file).
    const connection = await chromium.connectOverCDP(`http://127.0.0.1:${port}`, { noDefaults: true });
    return new HiddenTabs(connection);
  }

  /**
   * A new tab in the browser's default context (its own storage, apart from the visible tabs'
   * contexts), its window minimized: hidden from here on.
   */
  async open(): Promise<Page> {
    const context = this.connection.contexts()[0];
    if (!context) throw new Error('the CDP connection shows no default browser context');
    const page = await context.newPage();
    this.pages.push(page);
    const cdp = await context.newCDPSession(page);
    try {
      const { windowId } = await cdp.send('Browser.getWindowForTarget');
      await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'minimized' } });
    } finally {
      await cdp.detach().catch(() => undefined);
    }
    return page;
  }

  /** Closes the hidden tabs and disconnects (the browser stays up; its owner closes it). */
  async close(): Promise<void> {
    await Promise.allSettled(this.pages.map((p) => p.close()));
    await this.connection.close().catch(() => undefined);
  }
}

/** The page's document.visibilityState, or 'closed'/'unknown' when it cannot be read. */
export async function visibilityOf(page: Page): Promise<string> {
  if (page.isClosed()) return 'closed';
  return page.evaluate(() => document.visibilityState).catch(() => 'unknown');
}

/** What a hidden tab's record needs (chaos.ts's ChaosEventRecord, kind 'hide'). */
export interface HiddenRecord {
  kind: 'hide';
  rank: number;
  step: number;
  atStep: number;
  atMs: number;
  outcome: string;
}

/**
 * Records each hidden tab's rank and visibilityState once, the first time the steps done reach
 * `checkStep` (the middle of the run: training is under way), so a report shows the tab really was
 * in the background while it trained. Returns the progress hook.
 */
export function hiddenWatch(
  pages: readonly Page[],
  checkStep: number,
  onRecord: (record: HiddenRecord) => void,
  now: () => number = () => performance.now(),
): (step: number) => void {
  const t0 = now();
  let done = false;
  return (step) => {
    if (done || step < checkStep || pages.length === 0) return;
    done = true;
    for (const page of pages) {
      void Promise.all([
        visibilityOf(page),
        page
          .getByTestId('worker-rank')
          .textContent({ timeout: 1000 })
          .catch(() => null),
      ]).then(([visibility, rank]) =>
        onRecord({
          kind: 'hide',
          rank: Number.parseInt(rank ?? '', 10),
          step: checkStep,
          atStep: step,
          atMs: Math.round(now() - t0),
          outcome: `hidden for the whole run (visibilityState '${visibility}' at step ${step})`,
        }),
      );
    }
  };
}
