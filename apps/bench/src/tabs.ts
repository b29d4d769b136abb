import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { abortable } from '@peertrain/base';
import type { BenchApi } from './api.ts';
import { clockOffset, parseProcStat } from './metrics.ts';
import type { ClockSample, CpuTimes } from './metrics.ts';

// The driver's side of the benchmark pages: one browser context (so one renderer process) per tab,
// as worker tabs of separate devices would be; calls into window.peertrainBench; clock offsets.

/** The driver's epoch clock (same base as the pages': performance.timeOrigin + now()). */
export const driverNow = (): number => performance.timeOrigin + performance.now();

/** Machine-wide CPU times now (null off Linux). */
export function readCpu(): CpuTimes | null {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

type Method = keyof BenchApi;
type Arg<K extends Method> = Parameters<BenchApi[K]>[0];
type Result<K extends Method> = Awaited<ReturnType<BenchApi[K]>>;

export interface Tab {
  index: number;
  page: Page;
  context: BrowserContext;
  /** Page clock minus driver clock (ms). */
  offsetMs: number;
  /** Transports opened in this tab: name -> PeerJS id. */
  transports: Map<string, string>;
}

export interface OpenTabsOptions {
  browser: Browser;
  /** Base URL of the static server (trailing slash). */
  baseUrl: string;
  count: number;
  /** Prefix of every PeerJS id of this run (unique per run). */
  nonce: string;
  timeoutMs: number;
  onConsole?: (tab: number, type: string, text: string) => void;
  signal?: AbortSignal;
}

/** A transport to open in every tab: `name` picks it in later calls. */
export interface TransportSpec {
  name: string;
  kind: 'raw' | 'mesh';
  highWaterMark?: number;
  maxFrameBytes?: number;
}

export class BenchTabs {
  private constructor(
    readonly tabs: Tab[],
    private readonly nonce: string,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    public clockErrorMs = 0,
  ) {}

  /** Opens `count` bench pages (one browser context each), loads their config and syncs clocks. */
  static async open(opts: OpenTabsOptions): Promise<BenchTabs> {
    const { browser, count, signal } = opts;
    const tabs: Tab[] = [];
    try {
      for (let i = 0; i < count; i++) {
        signal?.throwIfAborted();
        const context = await browser.newContext();
        const page = await context.newPage();
        page.on('console', (msg) => opts.onConsole?.(i, msg.type(), msg.text()));
        page.on('pageerror', (err) => opts.onConsole?.(i, 'pageerror', `${err.name}: ${err.message}`));
        tabs.push({ index: i, page, context, offsetMs: 0, transports: new Map() });
      }
      const url = new URL('apps/bench/', opts.baseUrl).href;
      await abortable(
        Promise.all(
          tabs.map(async (t) => {
            await t.page.goto(url, { waitUntil: 'load', timeout: opts.timeoutMs });
            await t.page.waitForFunction(() => window.peertrainBench !== undefined, undefined, {
              timeout: opts.timeoutMs,
            });
          }),
        ),
        signal,
      );
      const bench = new BenchTabs(tabs, opts.nonce, opts.timeoutMs, signal);
      await Promise.all(tabs.map((t) => bench.call(t, 'init', { timeoutMs: opts.timeoutMs })));
      for (const t of tabs) {
        const { offsetMs, errorMs } = await bench.measureOffset(t);
        t.offsetMs = offsetMs;
        bench.clockErrorMs = Math.max(bench.clockErrorMs, errorMs);
      }
      return bench;
    } catch (err) {
      await Promise.allSettled(tabs.map((t) => t.context.close()));
      throw err;
    }
  }

  /** Opens the transport `spec` in every tab that lacks it (ids `<nonce>-<name>-<tab>`). */
  async ensureTransport(spec: TransportSpec): Promise<void> {
    await Promise.all(
      this.tabs
        .filter((t) => !t.transports.has(spec.name))
        .map(async (t) => {
          const id = `${this.nonce}-${spec.name}-${t.index}`;
          await this.call(t, 'open', {
            id,
            kind: spec.kind,
            ...(spec.highWaterMark !== undefined ? { highWaterMark: spec.highWaterMark } : {}),
            ...(spec.maxFrameBytes !== undefined ? { maxFrameBytes: spec.maxFrameBytes } : {}),
            timeoutMs: this.timeoutMs,
          });
          t.transports.set(spec.name, id);
        }),
    );
  }

  /** The PeerJS id of transport `name` in `tab` (ensureTransport first). */
  id(tab: Tab, name: string): string {
    const id = tab.transports.get(name);
    if (id === undefined) throw new RangeError(`transport ${name} is not open in tab ${tab.index}`);
    return id;
  }

  /** Calls window.peertrainBench[method](arg) in `tab`; rejects with the page's error or on abort. */
  call<K extends Method>(tab: Tab, method: K, arg: Arg<K>): Promise<Result<K>> {
    const run = tab.page.evaluate(
      ([m, a]) => {
        const api = window.peertrainBench;
        if (!api) throw new Error('the benchmark page is not loaded');
        const fn = api[m] as (this: BenchApi, x: unknown) => unknown;
        return fn.call(api, a);
      },
      [method, arg] as const,
    ) as Promise<Result<K>>;
    return abortable(run, this.signal);
  }

  /** True once the run's signal has aborted (a failure is then the abort, not a result). */
  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  /** A driver time as the tab's page clock reads it. */
  toPage(tab: Tab, driverMs: number): number {
    return driverMs + tab.offsetMs;
  }

  /** A time read on the tab's page clock, on the driver's clock. */
  toDriver(tab: Tab, pageMs: number): number {
    return pageMs - tab.offsetMs;
  }

  tab(i: number): Tab {
    const t = this.tabs[i];
    if (!t) throw new RangeError(`no tab ${i} (have ${this.tabs.length})`);
    return t;
  }

  /** Closes every page's transports, then the contexts. Never throws. */
  async close(): Promise<void> {
    await Promise.allSettled(
      this.tabs.map((t) => t.page.evaluate(() => window.peertrainBench?.close()).catch(() => undefined)),
    );
    await Promise.allSettled(this.tabs.map((t) => t.context.close()));
  }

  private async measureOffset(tab: Tab): Promise<{ offsetMs: number; errorMs: number }> {
    const samples: ClockSample[] = [];
    for (let k = 0; k < 7; k++) {
      const before = driverNow();
      const page = await this.call(tab, 'clockSample', undefined);
      samples.push({ before, page, after: driverNow() });
    }
    return clockOffset(samples);
  }
}
