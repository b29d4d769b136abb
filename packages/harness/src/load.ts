import type { Page, Request, Response } from 'playwright-core';

/** How many times more loadPage loads a page after a failure it retries. */
export const PAGE_RELOADS = 2;

export interface LoadPageOptions {
  /** Whether loading again is still harmless (the page has not started anything). Default: yes. */
  reloadable?: () => boolean;
  /** Failures (Chromium's error text) worth loading again for. Default: net::ERR_NETWORK_CHANGED. */
  retryOn?: RegExp;
  /** At most this many loads after the first (default PAGE_RELOADS). */
  reloads?: number;
  log?: (line: string) => void;
}

/**
 * page.goto until the load event, loading the page again when the document or one of the requests
 * of its load fails with a `retryOn` error while `reloadable()` holds, at most `reloads` times.
 *
 * Chromium fails what it is loading with net::ERR_NETWORK_CHANGED when the network changes under
 * it. That happened while a fresh private namespace settled (a worker tab lost two script chunks
 * and never joined; a dashboard lost its scripts and the session waited out its startup timeout);
 * the namespace is now settled before the browser starts (netns.ts), and this stays for networks
 * that change under a session for other reasons. A page whose load lost a script cannot start, and
 * one that has not started can simply load again.
 *
 * Resolves with the last load's response; rejects with the error of a load it does not retry.
 */
export async function loadPage(
  page: Page,
  url: string,
  opts: LoadPageOptions = {},
): Promise<Response | null> {
  const { reloadable = () => true, retryOn = /ERR_NETWORK_CHANGED/, reloads = PAGE_RELOADS, log } = opts;
  let done = 0;
  const mayReload = (why: string): boolean => {
    if (!retryOn.test(why) || done >= reloads || !reloadable()) return false;
    done++;
    log?.(`loading again after ${why}`);
    return true;
  };
  let lost: string | null = null;
  const onFailed = (req: Request): void => {
    const why = req.failure()?.errorText ?? '';
    if (!req.isNavigationRequest() && retryOn.test(why)) lost ??= `${why} on ${req.url()}`;
  };
  page.on('requestfailed', onFailed);
  try {
    for (;;) {
      lost = null;
      let res: Response | null;
      try {
        res = await page.goto(url, { waitUntil: 'load' });
      } catch (err) {
        if (!mayReload(err instanceof Error ? err.message : String(err))) throw err;
        // The document was lost: Chromium commits its error page next, and a load started before
        // that is cut short by it ("interrupted by another navigation").
        await page.waitForURL(/^chrome-error:/, { timeout: 2000 }).catch(() => undefined);
        continue;
      }
      const lostOnLoad: string | null = lost; // a script or stylesheet
      if (lostOnLoad !== null && mayReload(lostOnLoad)) continue;
      return res;
    }
  } finally {
    page.off('requestfailed', onFailed);
  }
}
