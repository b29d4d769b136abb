import { setTimeout as delay } from 'node:timers/promises';
import type { CDPSession, Page } from 'playwright-core';
import type { ChaosAction } from './chaos-spec.ts';
import { describeChaosAction } from './chaos-spec.ts';

/*
 * Runs a chaos schedule (chaos-spec.ts) against the worker tabs of a session. The session calls
 * `onProgress(step)` with every progress event; each action fires once, the first time the steps
 * done reach its step. A worker tab is found by the rank its page shows (data-testid="worker-rank",
 * "r / N"), since which tab got which rank depends on join order.
 *
 * - kill: the tab is closed without a goodbye (the vanish path; without --elastic the run fails).
 * - freeze: CDP Page.setWebLifecycleState frozen, then active after the duration. Frozen alone stops
 *   the page's timers but (measured in headless Chromium 156) not its data-channel callbacks: the
 *   tab went on answering pings and training. So the freeze also pauses the page's JavaScript in the
 *   debugger (Debugger.pause: the next statement that would run stops there) and resumes it at the
 *   thaw, as a discarded or frozen background tab runs nothing at all; what arrived meanwhile is
 *   delivered then. The coordinator hears nothing, drops the peer after the heartbeat timeout, and
 *   the thaw readmits it (elastic runs).
 * - slow: CDP Emulation.setCPUThrottlingRate on the tab's renderer (rate 1 again after the duration).
 */

/** One action as it was carried out, for the report. */
export interface ChaosEventRecord {
  /** 'hide': a tab hidden for the whole run (hide=N), recorded once with its visibility. */
  kind: ChaosAction['kind'] | 'hide';
  rank: number;
  /** The step the schedule gave. */
  step: number;
  /** Steps the coordinator had reported done when the action fired. */
  atStep: number;
  /** Milliseconds since the chaos runner started. */
  atMs: number;
  /** What was done, or why nothing was ("no tab shows rank 3"). */
  outcome: string;
}

export interface ChaosRunnerOptions {
  /** The worker tabs (their order does not matter; closed ones are skipped). */
  tabs: () => readonly Page[];
  /** Called before a tab is closed on purpose, so its close is not taken for a failure. */
  closing: (page: Page) => void;
  log?: (line: string) => void;
  /** Each action as it is carried out (also kept in `events`). */
  onRecord?: (record: ChaosEventRecord) => void;
  now?: () => number;
}

/** How long an action looks for the tab that shows its rank. */
const RANK_WAIT_MS = 10_000;

/** The rank a worker tab shows, or NaN while it shows none. */
async function rankOf(page: Page): Promise<number> {
  if (page.isClosed()) return NaN;
  const text = await page
    .getByTestId('worker-rank')
    .textContent({ timeout: 1000 })
    .catch(() => null);
  return Number.parseInt(text ?? '', 10);
}

export class ChaosRunner {
  readonly events: ChaosEventRecord[] = [];
  private readonly pending: ChaosAction[];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** CDP sessions of tabs with a freeze or slowdown in force, to undo at the end. */
  private readonly touched = new Map<Page, CDPSession>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Ranks seen on tabs: a frozen tab cannot answer again, and ranks never change in a run. */
  private readonly ranks = new Map<Page, number>();
  private readonly now: () => number;
  private readonly t0: number;
  private stopped = false;

  constructor(
    actions: readonly ChaosAction[],
    private readonly opts: ChaosRunnerOptions,
  ) {
    this.pending = [...actions].sort((a, b) => a.step - b.step);
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
  }

  /** The coordinator reported `step` steps done: fire every action due. */
  onProgress(step: number): void {
    while (!this.stopped && this.pending.length > 0 && this.pending[0]!.step <= step) {
      const action = this.pending.shift()!;
      const run = this.fire(action, step).catch((err: unknown) =>
        this.note(action, step, `failed: ${err instanceof Error ? err.message : String(err)}`),
      );
      this.inFlight.add(run);
      void run.finally(() => this.inFlight.delete(run));
    }
  }

  /** Stops firing, waits for actions in flight, thaws frozen tabs and lifts throttling. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
    await Promise.allSettled([...this.touched].map(([page, cdp]) => this.restore(page, cdp)));
    this.touched.clear();
  }

  private note(action: ChaosAction, atStep: number, outcome: string): void {
    const record = {
      kind: action.kind,
      rank: action.rank,
      step: action.step,
      atStep,
      atMs: Math.round(this.now() - this.t0),
      outcome,
    };
    this.events.push(record);
    this.opts.onRecord?.(record);
    this.opts.log?.(`chaos: ${describeChaosAction(action)} (at step ${atStep}): ${outcome}`);
  }

  private async tabOf(rank: number): Promise<Page | null> {
    const tabs = this.opts.tabs().filter((t) => !t.isClosed());
    const ranks = await Promise.all(
      tabs.map(async (t) => {
        const known = this.ranks.get(t) ?? (await rankOf(t));
        if (Number.isFinite(known)) this.ranks.set(t, known);
        return known;
      }),
    );
    const i = ranks.indexOf(rank);
    return i < 0 ? null : tabs[i]!;
  }

  /**
   * The tab showing `rank`, looked for until RANK_WAIT_MS: early in a run (step 1 or 2) a busy tab
   * may not have rendered its rank yet, and a kill that found none did nothing.
   */
  private async waitForTab(rank: number): Promise<Page | null> {
    const until = Date.now() + RANK_WAIT_MS;
    for (;;) {
      const page = await this.tabOf(rank);
      if (page || Date.now() >= until || this.stopped) return page;
      await delay(250);
    }
  }

  private async fire(action: ChaosAction, atStep: number): Promise<void> {
    const page = await this.waitForTab(action.rank);
    if (!page) return this.note(action, atStep, `no open tab shows rank ${action.rank}`);
    switch (action.kind) {
      case 'kill':
        this.opts.closing(page);
        this.touched.delete(page);
        await page.close();
        return this.note(action, atStep, 'tab closed');
      case 'freeze': {
        const cdp = await this.session(page);
        await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
        await cdp.send('Debugger.enable');
        await cdp.send('Debugger.pause');
        this.note(action, atStep, 'tab frozen');
        this.later(action.durationMs, () => this.thaw(action, page, cdp));
        return;
      }
      case 'slow': {
        const cdp = await this.session(page);
        await cdp.send('Emulation.setCPUThrottlingRate', { rate: action.factor });
        this.note(action, atStep, `CPU throttled ${action.factor}x`);
        if (action.durationMs !== null)
          this.later(action.durationMs, () =>
            cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 }).then(() => undefined),
          );
        return;
      }
      default: {
        const never: never = action;
        throw new Error(`unhandled chaos action ${JSON.stringify(never)}`);
      }
    }
  }

  private async thaw(action: ChaosAction, page: Page, cdp: CDPSession): Promise<void> {
    if (page.isClosed()) return;
    await resumeScripts(cdp);
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    this.opts.log?.(`chaos: rank ${action.rank} thawed`);
  }

  private async session(page: Page): Promise<CDPSession> {
    let cdp = this.touched.get(page);
    if (!cdp) {
      cdp = await page.context().newCDPSession(page);
      this.touched.set(page, cdp);
    }
    return cdp;
  }

  /** Runs `fn` after `ms` unless stopped first (stop() undoes its effect instead). */
  private later(ms: number, fn: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      const run = fn().catch((err: unknown) =>
        this.opts.log?.(`chaos: undoing failed: ${err instanceof Error ? err.message : String(err)}`),
      );
      this.inFlight.add(run);
      void run.finally(() => this.inFlight.delete(run));
    }, ms);
    this.timers.add(timer);
  }

  private async restore(page: Page, cdp: CDPSession): Promise<void> {
    if (page.isClosed()) return;
    await resumeScripts(cdp).catch(() => undefined);
    await cdp.send('Page.setWebLifecycleState', { state: 'active' }).catch(() => undefined);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 }).catch(() => undefined);
    await cdp.detach().catch(() => undefined);
  }
}

/** Lets a page paused by a freeze run again (a page that was never paused: no-ops). */
async function resumeScripts(cdp: CDPSession): Promise<void> {
  await cdp.send('Debugger.resume').catch(() => undefined); // not paused (nothing ran meanwhile)
  await cdp.send('Debugger.disable');
}
