import { setTimeout as delay } from 'node:timers/promises';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  CheckpointError,
  ConfigError,
  PhaseTimeoutError,
  checkResumable,
  parseRunConfig,
} from '@peertrain/protocol';
import type { Checkpoint, ComputePlace, RunConfigInput, WireError } from '@peertrain/protocol';
import { dashboardUrl, workerUrl } from './page-urls.ts';
import type { CoordinatorEvent, RunReport } from '@peertrain/protocol';
import { abortReason, asError } from '@peertrain/base';
import { REPO_ROOT, ensureBuilt } from './build.ts';
import { DEFAULT_CHROMIUM, launchBrowser } from './browser.ts';
import { SessionError } from './errors.ts';
import { pickRankTab, tabFaults as elasticFaults } from './elastic-faults.ts';
import type { VanishTarget } from './elastic-faults.ts';
import { parseCoordinatorEvent } from '@peertrain/protocol';
import { writeCheckpointDir } from './checkpoint-dir.ts';
import { HiddenTabs, hiddenTabLaunch, hiddenWatch } from './hidden-tab.ts';
import { chaosSchedule } from './chaos-spec.ts';
import type { ChaosAction, ChaosSpec } from './chaos-spec.ts';
import { ChaosRunner } from './chaos.ts';
import type { ChaosEventRecord } from './chaos.ts';
import { applyLink } from './link.ts';
import type { AppliedLink } from './link.ts';
import type { LinkSpec } from './link-spec.ts';
import { loadPage } from './load.ts';
import { startSessionServers } from './servers.ts';
import type { SessionServers } from './servers.ts';

export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/** Console errors kept per session (the last ones), for the error text. */
const MAX_PAGE_ERRORS = 20;

export interface SessionInfo {
  room: string;
  /** Chromium version as the browser reports it, e.g. "156.0.8078.79". */
  chromium: string;
  baseUrl: string;
  dashboardUrl: string;
  workerUrl: string;
  signalPort: number;
  /** The chaos schedule drawn for this run (empty without `chaos`). */
  chaos: ChaosAction[];
}

export interface RunSessionOptions {
  config: RunConfigInput;
  /**
   * Fault injection passed to the dashboard (`&faults=a,b`), e.g. ['malformed']. 'vanish' is the
   * harness's own: it closes the last worker's tab, without a goodbye, once step 3 is done, and
   * the session then ends with the coordinator's error (a lost peer), not with the closed tab.
   * 'vanish-rank0' closes rank 0's tab instead, 'vanish-rankR@K' rank R's once K steps are done (an
   * elastic pipeline's stage R); 'join@K' opens one more worker tab once K steps
   * are done (elastic runs admit it at step K: elastic-faults.ts).
   */
  faults?: readonly string[];
  /**
   * Kills, freezes and slowdowns of worker tabs at seeded steps (chaos-spec.ts, `--chaos`). The
   * schedule is drawn from the run's steps, workers and seed before anything starts
   * (ChaosSpecError when the run cannot hold it) and given in `onReady`'s info.
   */
  chaos?: ChaosSpec;
  /** Each chaos action as it is carried out. */
  onChaos?: (record: ChaosEventRecord) => void;
  /**
   * Every tab in one browser profile, as a person opening several tabs: they link through the browser
   * (transport tab-links.ts), not WebRTC. Default: a profile per tab, like devices. Hidden tabs keep theirs.
   */
  oneProfile?: boolean;
  /** Where the worker pages' engines compute (their `compute=` parameter); default: the pages' own. */
  compute?: ComputePlace;
  /** Room id; random when omitted. */
  room?: string;
  executablePath?: string;
  /** Use this browser instead of launching one; it is left open (its pages are closed). */
  browser?: Browser;
  /** chaos hide=N with `browser`: the DevTools port it was launched with (hiddenTabLaunch). */
  devtoolsPort?: number;
  /** Serve this prebuilt directory instead of building the repository's dist/. */
  dist?: string;
  /** Repository root for the build (default: this checkout). */
  root?: string;
  /**
   * Impair the peers' UDP (applyLink; inside the private namespace only, else LinkUnavailableError),
   * before the browser is launched; with `browser` given, before the pages open (Chromium then sees
   * the delay's TUN device appear: prefer applyLink before launching it). Undone at the end.
   */
  link?: LinkSpec;
  /**
   * Write every `checkpoint` event of the run here (writeCheckpointDir: atomic, the latest kept);
   * the session resolves once the last one is on disk. A failed write fails the session.
   */
  checkpointDir?: string;
  /**
   * A PNG of the whole dashboard page, taken when the run is done (its final peer table, charts
   * and report); parent directories are made. A failed screenshot fails the session.
   */
  screenshot?: string;
  /**
   * Hand the trained parameters over as a `model` event before `done` (what --export-model writes).
   * Off by default: they cross DevTools as base64 JSON, 2.8 s for wideMlp's 16 MB.
   */
  trainedModel?: boolean;
  /** Start from this checkpoint (readCheckpointDir); refused with CheckpointError when it is of another run. */
  resume?: Checkpoint & { blob: Uint8Array };
  /** Reject with PhaseTimeoutError when no event arrives for this long (default 120 s). */
  idleTimeoutMs?: number;
  onEvent?: (event: CoordinatorEvent) => void;
  /** Called once the pages are opening. */
  onReady?: (info: SessionInfo) => void;
  /** Every console message of every page (`source` is 'dashboard' or 'worker N'). */
  onConsole?: (source: string, type: string, text: string) => void;
  /** Harness progress lines (build message). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * What a room id may look like: peer ids are built from it and PeerJS accepts letters and digits
 * joined by single '-' or '_'. Up to 64 characters.
 */
export const ROOM_PATTERN = /^(?=.{1,64}$)[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*$/;
export const ROOM_RULE = 'up to 64 letters and digits, optionally joined by single - or _';

export function randomRoom(): string {
  return randomBytes(4).toString('hex');
}

/**
 * Runs one training session headless: builds the pages if needed, starts the signaling and static
 * servers on 127.0.0.1, opens the dashboard in headless mode and `config.workers` worker tabs (one
 * browser context each), forwards the dashboard's events to `onEvent`, and resolves with the
 * RunReport of its `done` event. Rejects with ConfigError (bad config), SessionError (the page
 * reported an error, crashed, failed to load or sent an invalid event), PhaseTimeoutError (no event
 * for idleTimeoutMs), BrowserNotFoundError, BuildError, LinkUnavailableError, or the abort reason.
 * Pages, contexts, the browser (unless passed in), both servers and the link are always torn down.
 */
export async function runSession(opts: RunSessionOptions): Promise<RunReport> {
  const { signal, idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS } = opts;
  const config = parseRunConfig(opts.config);
  if (opts.resume) checkResumable(opts.resume, config); // before anything starts
  signal?.throwIfAborted();
  const chaos = opts.chaos ? chaosSchedule(opts.chaos, config) : [];
  const room = opts.room ?? randomRoom();
  if (!ROOM_PATTERN.test(room))
    throw new ConfigError('invalid room', [`${JSON.stringify(room)}: ${ROOM_RULE}`]);
  let dist = opts.dist;
  if (dist === undefined) {
    const built = await ensureBuilt({
      root: opts.root ?? REPO_ROOT,
      ...(signal ? { signal } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    dist = built.outDir;
  }

  let servers: SessionServers | null = null;
  let browser: Browser | null = null;
  let link: AppliedLink | null = null;
  const contexts: BrowserContext[] = [];
  const hide = opts.chaos?.hide ?? 0;
  if (hide > 0 && opts.browser && opts.devtoolsPort === undefined)
    throw new ConfigError('invalid chaos', ['hide=N: a passed-in browser needs its devtoolsPort']);
  let hidden: HiddenTabs | null = null;
  try {
    if (opts.link) link = await applyLink(opts.link, { ...(signal ? { signal } : {}) });
    servers = await startSessionServers({ dist, ...(signal ? { signal } : {}) });
    // hide=N: a DevTools port to open the hidden tabs through, background throttling kept (hidden-tab.ts).
    const hiding = opts.browser ? null : await hiddenTabLaunch(hide);
    browser =
      opts.browser ??
      (await launchBrowser({
        executablePath: opts.executablePath ?? DEFAULT_CHROMIUM,
        ...(hiding ? { args: hiding.args, backgroundThrottling: true } : {}),
        ...(signal ? { signal } : {}),
      }));
    const port = hiding?.port ?? opts.devtoolsPort;
    if (hide > 0 && port !== undefined) hidden = await HiddenTabs.connect(port);
    const info: SessionInfo = {
      room,
      chromium: browser.version(),
      baseUrl: servers.web.url,
      dashboardUrl: dashboardUrl(servers.web.url, room, config, {
        ...(opts.faults ? { faults: opts.faults } : {}),
        resume: opts.resume !== undefined,
        model: opts.trainedModel === true,
      }),
      workerUrl: workerUrl(servers.web.url, room, config.backend, opts.compute),
      signalPort: servers.signal.port,
      chaos,
    };
    opts.onReady?.(info);
    const plan = hidden ? { tabs: hidden, count: hide, workers: config.workers, pages: [] } : null;
    return await drive(browser, contexts, info, config.workers, idleTimeoutMs, opts, plan);
  } finally {
    // Contexts first (a passed-in browser stays open), then the browser we own, then the servers.
    await Promise.allSettled(contexts.map((c) => c.close()));
    await hidden?.close();
    if (browser && !opts.browser) await browser.close().catch(() => undefined);
    await servers?.close();
    await link?.close();
  }
}

/**
 * The tab whose worker page shows the highest rank (`data-testid="worker-rank"`: "r / N") or rank 0.
 * Looked for until every tab shows a rank (at most 10 s: a busy tab may not have rendered its rank
 * by step 3, and the fallback, the last tab, is often not rank 0); then the last tab.
 */
async function rankTab(tabs: readonly Page[], which: VanishTarget): Promise<Page> {
  const until = Date.now() + 10_000;
  for (;;) {
    const ranks = await Promise.all(
      tabs.map((t) =>
        t
          .getByTestId('worker-rank')
          .textContent({ timeout: 1000 })
          .then((text) => Number.parseInt(text ?? '', 10))
          .catch(() => NaN),
      ),
    );
    if (ranks.every(Number.isFinite) || Date.now() >= until) return tabs[pickRankTab(ranks, which)]!;
    await delay(250);
  }
}

/**
 * The 'vanish' fault: closes the highest rank's tab ('vanish-rank0': rank 0's; 'vanish-rankR@K': rank R's). Which tab got which
 * rank depends on when each joined; an elastic run may lose any rank (the lowest surviving rank
 * takes over rank 0's evaluation and hands back the model).
 */
async function closeRankTab(
  which: VanishTarget,
  tabs: readonly Page[],
  chosen: (page: Page) => void,
  step: number,
  log: ((line: string) => void) | undefined,
): Promise<void> {
  if (tabs.length === 0) return;
  const page = await rankTab(tabs, which);
  chosen(page);
  const name = which === 'rank0' ? 'rank 0' : which === 'highest' ? 'highest rank' : `rank ${which}`;
  log?.(`fault: closing the ${name} worker tab after step ${step}`);
  await page.close().catch(() => undefined);
}

/**
 * What the harness does to worker tabs as the steps go by: the 'vanish' fault (the highest rank's
 * tab closed after step 3; 'vanish-rank0': rank 0's), 'join@K' (one more tab opened once K steps
 * are done) and the chaos schedule. Tabs closed on purpose are no failure.
 */
function tabFaults(
  workerTabs: readonly Page[],
  hiddenTabs: readonly Page[],
  actions: readonly ChaosAction[],
  opts: Pick<RunSessionOptions, 'config' | 'faults' | 'log' | 'onChaos'>,
  openJoiner: () => void,
): {
  onProgress: (step: number) => void;
  closedOnPurpose: (page: Page) => boolean;
  stop: () => Promise<void>;
} {
  const elastic = elasticFaults(opts.faults);
  const vanishAfterStep = elastic.vanish !== null ? elastic.vanishAfterStep : Infinity;
  const closed = new Set<Page>();
  let vanishStarted = false;
  const steps = parseRunConfig(opts.config).steps;
  const watchHidden = hiddenWatch(hiddenTabs, Math.floor(steps / 2), (r) => opts.onChaos?.(r));
  const chaos = new ChaosRunner(actions, {
    tabs: () => workerTabs,
    closing: (page) => closed.add(page),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.onChaos ? { onRecord: opts.onChaos } : {}),
  });
  return {
    onProgress: (step) => {
      if (step >= vanishAfterStep && !vanishStarted) {
        vanishStarted = true;
        void closeRankTab(elastic.vanish!, workerTabs, (page) => closed.add(page), step, opts.log);
      }
      if (step === elastic.joinAfterStep) openJoiner();
      chaos.onProgress(step);
      watchHidden(step);
    },
    closedOnPurpose: (page) => closed.has(page),
    stop: () => chaos.stop(),
  };
}

/** Forwards a tab's console and uncaught errors; fails the session when the tab crashes or closes unasked. */
function watchPage(
  page: Page,
  source: string,
  on: {
    onConsole?: (source: string, type: string, text: string) => void;
    pageError: (line: string) => void;
    fail: (remote: WireError) => void;
    /** A tab the 'vanish' fault closed: its close is the fault, not a failure. */
    closedOnPurpose: (page: Page) => boolean;
  },
): void {
  page.on('console', (msg) => {
    // "Failed to load resource: ..." does not say which one; the location does.
    const where = msg.location().url;
    const text =
      where && msg.text().startsWith('Failed to load resource') ? `${msg.text()} (${where})` : msg.text();
    on.onConsole?.(source, msg.type(), text);
    // A missing favicon is not a session problem.
    if (msg.type() === 'error' && !where.endsWith('/favicon.ico')) on.pageError(`${source}: ${text}`);
  });
  page.on('pageerror', (err) => {
    on.onConsole?.(source, 'pageerror', `${err.name}: ${err.message}`);
    on.pageError(`${source}: uncaught ${err.name}: ${err.message}`);
  });
  page.on('crash', () => on.fail({ name: 'PageCrashed', message: `the ${source} tab crashed` }));
  page.on('close', () => {
    if (on.closedOnPurpose(page)) return;
    on.fail({ name: 'PageClosed', message: `the ${source} tab closed unexpectedly` });
  });
}

/**
 * Starts a navigation without awaiting it. Navigation failures (connection refused, ...) fail the
 * session; once it is over they are moot. Each navigation handles its own rejection at once: a later
 * await that throws (the session aborted while opening pages) must not leave an earlier navigation's
 * rejection unhandled.
 */
function openPage(
  page: Page,
  url: string,
  source: string,
  how: {
    reloadable: () => boolean;
    fail: (remote: WireError) => void;
    log: ((line: string) => void) | undefined;
  },
): void {
  const log = (line: string): void => how.log?.(`${source}: ${line}`);
  loadPage(page, url, { reloadable: how.reloadable, log }).then(
    (res) => {
      if (res && !res.ok())
        how.fail({ name: 'PageLoadError', message: `${source}: GET ${url} -> ${res.status()}` });
    },
    (err: unknown) => {
      how.fail({ name: 'PageLoadError', message: err instanceof Error ? err.message : String(err) });
    },
  );
}

/** A promise with its settle functions, for a result that event handlers deliver. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A page in a fresh browser context (kept in `contexts` to close later); with `oneProfile`, in the first one. */
async function newTab(browser: Browser, contexts: BrowserContext[], oneProfile = false): Promise<Page> {
  const shared = oneProfile ? contexts[0] : undefined;
  if (shared) return shared.newPage();
  const ctx = await browser.newContext();
  contexts.push(ctx);
  return ctx.newPage();
}

/** hide=N: the last `count` of the first `workers` worker tabs open hidden; `pages` holds them. */
interface HidingPlan {
  tabs: HiddenTabs;
  count: number;
  workers: number;
  pages: Page[];
}

/**
 * How the next worker tab (`opened` so far) is made: hidden (hidden-tab.ts) when the plan says so,
 * else, a joiner too, in a fresh context.
 */
function tabMaker(
  browser: Browser,
  contexts: BrowserContext[],
  hiding: HidingPlan | null,
  opened: number,
  { oneProfile }: { oneProfile?: boolean },
): () => Promise<Page> {
  if (hiding === null || opened < hiding.workers - hiding.count || opened >= hiding.workers)
    return () => newTab(browser, contexts, oneProfile);
  return async () => {
    const page = await hiding.tabs.open();
    hiding.pages.push(page);
    return page;
  };
}

/** One more worker tab from `create` (a fresh context, or hidden), named by its position ('worker N'), then `start`ed. */
async function newWorkerTab(
  create: () => Promise<Page>,
  tabs: Page[],
  start: (page: Page, source: string) => void,
): Promise<void> {
  const page = await create();
  tabs.push(page);
  start(page, `worker ${tabs.length}`);
}

/** `--resume`: the dashboard takes the checkpoint from window.peertrainResume(). */
async function exposeResume(dash: Page, resume: RunSessionOptions['resume']): Promise<void> {
  if (!resume) return;
  const payload = { manifest: resume.manifest, blobBase64: Buffer.from(resume.blob).toString('base64') };
  await dash.exposeFunction('peertrainResume', () => payload);
}

/**
 * Checkpoint events go to `dir` (when given) in order, one write after the other; `written()`
 * settles after the last. A failed write fails the session with CheckpointError.
 */
function checkpointWriter(
  dir: string | undefined,
  log: ((line: string) => void) | undefined,
  fail: (error: Error) => void,
): {
  write: (event: Extract<CoordinatorEvent, { type: 'checkpoint' }>) => void;
  written: () => Promise<unknown>;
} {
  let writes: Promise<unknown> = Promise.resolve();
  return {
    write: (event) => {
      if (dir === undefined) return;
      const blob = new Uint8Array(Buffer.from(event.blobBase64, 'base64'));
      const write = writes.then(() => writeCheckpointDir(dir, event.manifest, blob));
      write.then(
        ({ manifestPath }) => log?.(`checkpoint after step ${event.manifest.step}: ${manifestPath}`),
        (err: unknown) => fail(new CheckpointError(`writing ${dir}: ${String(err)}`)),
      );
      writes = write.catch(() => undefined);
    },
    written: () => writes,
  };
}

async function drive(
  browser: Browser,
  contexts: BrowserContext[],
  info: SessionInfo,
  workers: number,
  idleTimeoutMs: number,
  opts: RunSessionOptions,
  hiding: HidingPlan | null,
): Promise<RunReport> {
  const { signal } = opts;
  const pageErrors: string[] = [];
  const notePageError = (line: string): void =>
    void (pageErrors.push(line) > MAX_PAGE_ERRORS && pageErrors.shift());
  const outcome = deferred<RunReport>();
  // It may settle while pages are still opening, before anything awaits it.
  outcome.promise.catch(() => undefined);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  let phase = 'startup (waiting for the dashboard and workers)';
  const finish = (result: { report: RunReport } | { error: Error }): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if ('report' in result) outcome.resolve(result.report);
    else outcome.reject(result.error);
  };
  const failRemote = (remote: WireError): void =>
    finish({ error: new SessionError(remote, [...pageErrors]) });
  const armIdle = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const err = new PhaseTimeoutError(phase, idleTimeoutMs);
      if (pageErrors.length > 0) err.message += ` [page errors: ${pageErrors.join(' | ')}]`;
      finish({ error: err });
    }, idleTimeoutMs);
  };
  const onAbort = (): void => finish({ error: abortReason(signal!) });
  signal?.addEventListener('abort', onAbort, { once: true });
  const watch = (page: Page, source: string): void =>
    watchPage(page, source, {
      ...(opts.onConsole ? { onConsole: opts.onConsole } : {}),
      pageError: notePageError,
      fail: failRemote,
      closedOnPurpose: faults.closedOnPurpose,
    });
  const workerTabs: Page[] = [];
  // 'join@K' opens its tab through openWorker, defined below (called only once steps are reported).
  const faults = tabFaults(workerTabs, hiding?.pages ?? [], info.chaos, opts, () => {
    void openWorker().catch((err: unknown) => finish({ error: asError(err) }));
  });
  let dashboardSpoke = false;
  const open = (page: Page, url: string, source: string, reloadable: () => boolean): void =>
    openPage(page, url, source, { reloadable, fail: failRemote, log: opts.log });
  const openWorker = (): Promise<void> =>
    newWorkerTab(tabMaker(browser, contexts, hiding, workerTabs.length, opts), workerTabs, (page, source) => {
      watch(page, source);
      open(page, info.workerUrl, source, () => !finished);
    });
  try {
    armIdle();
    const dash = await newTab(browser, contexts);
    watch(dash, 'dashboard');
    await exposeResume(dash, opts.resume);
    const checkpoints = checkpointWriter(opts.checkpointDir, opts.log, (error) => finish({ error }));
    await dash.exposeFunction('peertrainEmit', (raw: unknown) => {
      if (finished) return;
      let event: CoordinatorEvent;
      try {
        event = parseCoordinatorEvent(raw);
      } catch (err) {
        failRemote({ name: 'ProtocolError', message: err instanceof Error ? err.message : String(err) });
        return;
      }
      armIdle();
      dashboardSpoke = true;
      if (event.type === 'progress') phase = `training (after step ${event.step} of ${event.totalSteps})`;
      if (event.type === 'progress') faults.onProgress(event.step);
      opts.onEvent?.(event);
      if (event.type === 'checkpoint') checkpoints.write(event);
      if (event.type === 'done')
        void wrapUp(checkpoints.written(), dash, opts.screenshot, event.report).then(finish);
      else if (event.type === 'error') failRemote(event.error);
    });
    // The dashboard can load again too while it has said nothing yet (its scripts failed: nothing
    // runs). Workers dialling it meanwhile keep dialling until it is there (the worker runtime).
    open(dash, info.dashboardUrl, 'dashboard', () => !finished && !dashboardSpoke);
    for (let i = 1; i <= workers && !finished; i++) await openWorker();
  } catch (err) {
    finish({ error: err instanceof Error ? err : new Error(String(err)) });
  }
  try {
    return await outcome.promise;
  } finally {
    finished = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await faults.stop();
  }
}

/** A done run's last work (checkpoints on disk, the screenshot), then its report or what failed. */
function wrapUp(
  written: Promise<unknown>,
  dash: Page,
  screenshot: string | undefined,
  report: RunReport,
): Promise<{ report: RunReport } | { error: Error }> {
  return written
    .then(() => screenshotTo(dash, screenshot))
    .then(
      () => ({ report }),
      (error: unknown) => ({ error: asError(error) }),
    );
}

/** The dashboard page as one PNG at `path` (none: nothing), after its last frame is drawn. */
async function screenshotTo(page: Page, path: string | undefined): Promise<void> {
  if (path === undefined) return;
  await mkdir(dirname(path), { recursive: true });
  // A frame for the final view (or 1 s, should frames not come).
  await page.evaluate(
    () =>
      new Promise((r) => {
        requestAnimationFrame(() => r(null));
        setTimeout(() => r(null), 1000);
      }),
  );
  await page.screenshot({ path, fullPage: true });
}
