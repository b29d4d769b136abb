import type { Browser, BrowserContext, Page } from 'playwright-core';
import { abortable } from '@peertrain/base';
import { workerUrl } from '@peertrain/harness';
import type { ComputePlace } from '@peertrain/protocol';
import type { CoordinatorRunOptions, CoordinatorRunResult } from './api.ts';
import { BenchTabs } from './tabs.ts';

// A hosted room, shared by parts 4 (pipeline) and 6 (scaling): one bench tab hosts a coordinator
// for a room of its own and `workers` tabs of the real worker page (one browser context each) join
// it once; every run of the part then goes through that same set of tabs, one after the other (a
// run takes the first `config.workers` idle workers), so a run costs its steps, not a session's
// startup (~15 s).

export interface HostedRoomOptions {
  browser: Browser;
  /** Static server URL (trailing slash). */
  baseUrl: string;
  /** Prefix of this run's PeerJS ids. */
  nonce: string;
  /** The room's name (unique per part: `<nonce>-pipe`, `<nonce>-scale`). */
  room: string;
  /** Worker tabs to open (the most any run of the part takes). */
  workers: number;
  setupTimeoutMs: number;
  /** Worker tabs in the coordinator tab's profile, linked through the browser (tab links). */
  oneProfile?: boolean;
  /** Where the worker tabs' engines compute (their `compute=` parameter); absent: the page's default. */
  compute?: ComputePlace;
  /** Every console line of the coordinator tab (progress lines included). */
  onHostConsole?: (type: string, text: string) => void;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface HostedRoom {
  /** Idle workers in the room once every tab joined. */
  readonly joined: number;
  /** One training session on the hosted coordinator (rejects with the page's error). */
  run(opts: CoordinatorRunOptions): Promise<CoordinatorRunResult>;
  /** Closes the worker tabs, then the coordinator tab. Never throws. */
  close(): Promise<void>;
}

/** Opens the coordinator tab and the worker tabs and waits until every worker is idle in the room. */
export async function openHostedRoom(opts: HostedRoomOptions): Promise<HostedRoom> {
  const { browser, log, signal, room, workers } = opts;
  let workerErrors = 0;
  const host = await BenchTabs.open({
    browser,
    baseUrl: opts.baseUrl,
    count: 1,
    nonce: opts.nonce,
    timeoutMs: opts.setupTimeoutMs,
    onConsole: (_tab, type, text) => opts.onHostConsole?.(type, text),
    ...(signal ? { signal } : {}),
  });
  const contexts: BrowserContext[] = [];
  // --one-profile: worker pages of the host's context (closed with it too, but first).
  const pages: Page[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled([...contexts.map((c) => c.close()), ...pages.map((p) => p.close())]);
    await host.close();
  };
  try {
    const tab = host.tab(0);
    const oneProfile = opts.oneProfile === true;
    await host.call(tab, 'coordinatorOpen', { room, timeoutMs: opts.setupTimeoutMs, tabLinks: oneProfile });
    const url = workerUrl(opts.baseUrl, room, 'wasm', opts.compute);
    for (let i = 0; i < workers; i++) {
      signal?.throwIfAborted();
      const context = oneProfile ? tab.context : await browser.newContext();
      if (!oneProfile) contexts.push(context);
      const page = await context.newPage();
      if (oneProfile) pages.push(page);
      page.on('pageerror', (err) => {
        if (workerErrors++ < 20) log(`worker ${i} pageerror: ${err.name}: ${err.message}`);
      });
      page.on('console', (msg) => {
        if (msg.type() === 'error' && workerErrors++ < 20) log(`worker ${i}: ${msg.text()}`);
      });
      await abortable(
        page.goto(url, { waitUntil: 'domcontentloaded', timeout: opts.setupTimeoutMs }),
        signal,
      );
    }
    const joined = await host.call(tab, 'coordinatorWait', { workers, timeoutMs: opts.setupTimeoutMs });
    return { joined, run: (o) => host.call(tab, 'coordinatorRun', o), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** "Name: first line of the message" for a row's error. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.split('\n')[0] ?? ''}` : String(err);
}
