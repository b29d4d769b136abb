import type { Browser } from 'playwright-core';
import { parseRunReport } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { PROGRESS_MARKER } from './api.ts';
import type { CoordinatorRunResult } from './api.ts';
import { exposedComm } from './exposed-comm.ts';
import { describeError, openHostedRoom } from './hosted.ts';
import type { HostedRoom } from './hosted.ts';
import {
  caseLabel,
  compressionConfig,
  overlapField,
  scalingCases,
  scalingConfig,
  scalingMethods,
} from './scaling-cases.ts';
import type { ScalingSettings } from './scaling-cases.ts';
import {
  compressionRatios,
  parseTimeline,
  runFigures,
  scalingChecks,
  scalingRowBase,
  withRatios,
} from './scaling-figures.ts';
import type { CompressionRow, RunFigures, ScalingPart, ScalingRow } from './scaling-figures.ts';

// Part 6: scaling. The same model, target and global batch trained by 1..4 tabs with every method,
// on one hosted room (hosted.ts: the coordinator tab and 4 worker tabs join once), then the bytes
// per step of each compression against fp32. A run that fails (a method the workers do not know
// yet, a timeout) is that row's error; the part goes on.

const SETUP_TIMEOUT_MS = 120_000;
/** A run's wait for its workers (they are idle between runs: only a broken tab makes it wait). */
const RUN_WAIT_MS = 60_000;
/** One run's limit: 600 CNN steps on 4 tabs take about a minute here; a stuck method costs this. */
const RUN_TIMEOUT_MS = 240_000;
/**
 * A compression run's limit: all 300 synchronous steps, no target; on this shared machine under
 * load a step of 3 tabs took up to a second, and 240 s cut the fp32 run short.
 */
const COMPRESSION_TIMEOUT_MS = 900_000;

export interface ScalingOptions {
  browser: Browser;
  /** Static server URL (trailing slash). */
  baseUrl: string;
  settings: ScalingSettings;
  /** Prefix of this run's PeerJS ids; the room is `<nonce>-scale`. */
  nonce: string;
  /** The room's tabs in one browser profile (tab links, not WebRTC). */
  oneProfile?: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Steps left out of the exposed-communication figure: the first all-reduces open the ring. */
const EXPOSED_SKIP_STEPS = 3;

/** Methods whose runs (on more than one tab) are traced for the exposed-communication figure. */
const TRACED_METHODS: ReadonlySet<string> = new Set(['allreduce', 'overlap']);

/**
 * Runs `config` and reads its figures; throws the page's error. `traced`: the run's trace gives
 * the communication not hidden behind compute (exposed-comm.ts).
 */
async function runOne(
  room: HostedRoom,
  config: RunConfigInput,
  target: number | null,
  globalBatch: number,
  timeoutMs = RUN_TIMEOUT_MS,
  traced = false,
): Promise<RunFigures> {
  const res: CoordinatorRunResult = await room.run({
    config,
    waitMs: RUN_WAIT_MS,
    timeoutMs,
    trace: traced,
    progress: false,
  });
  const report = parseRunReport(res.report);
  const figures = runFigures(res.report, report, parseTimeline(res.timeline), target, globalBatch);
  if (!traced || res.trace === null) return figures;
  const exposed = exposedComm(res.trace, EXPOSED_SKIP_STEPS);
  return {
    ...figures,
    exposedCommMsPerStep: exposed.exposedMsPerStep,
    criticalCommMsPerStep: exposed.criticalMsPerStep,
  };
}

function summary(f: RunFigures): string {
  const t = f.target;
  const reached =
    t.reached && t.timeMs !== null
      ? `target at step ${t.step} in ${(t.timeMs / 1000).toFixed(1)} s`
      : 'target not reached';
  const util = f.computeUtilization === null ? '-' : f.computeUtilization.toFixed(2);
  const exposed =
    f.exposedCommMsPerStep === undefined
      ? ''
      : `, exposed comm ${f.exposedCommMsPerStep.toFixed(1)} ms/step (past the slowest compute ${f.criticalCommMsPerStep?.toFixed(1) ?? '-'})`;
  return `${reached}, ${f.steps} steps, ${f.samplesPerSec.toFixed(0)} samples/s, util ${util}${exposed}`;
}

/** Opens the room, warms each model, runs every case and the compression runs, closes everything. */
export async function measureScaling(opts: ScalingOptions): Promise<ScalingPart> {
  const { settings: s, log, signal } = opts;
  const overlap = overlapField();
  const cases = scalingCases(s, scalingMethods(overlap));
  const workers = Math.max(...s.tabs, s.compression?.tabs ?? 1);
  const room = `${opts.nonce}-scale`;
  log(
    `scaling: ${cases.length} runs, ${workers} worker tabs, room ${room}, overlap field ${overlap ?? 'none'}`,
  );
  const hosted = await openHostedRoom({
    browser: opts.browser,
    baseUrl: opts.baseUrl,
    nonce: opts.nonce,
    room,
    workers,
    setupTimeoutMs: SETUP_TIMEOUT_MS,
    ...(opts.oneProfile === true ? { oneProfile: true } : {}),
    onHostConsole: (type, text) => {
      if (!text.startsWith(PROGRESS_MARKER) && (type === 'error' || type === 'pageerror'))
        log(`coordinator tab ${type}: ${text}`);
    },
    log,
    ...(signal ? { signal } : {}),
  });
  try {
    log(`scaling: ${hosted.joined} workers joined`);
    // Every tab's first run of a model compiles its kernels: once per model, on every tab, unmeasured.
    for (const model of new Set([
      ...s.models.map((m) => m.model),
      ...(s.compression ? [s.compression.model] : []),
    ])) {
      const warm = {
        strategy: 'data',
        model,
        workers,
        batch: 8,
        steps: 3,
        evalEvery: 0,
        backend: 'wasm',
      } as const;
      await warmUp(hosted, warm, log, signal);
      log(`scaling: ${model} warm-up run done`);
    }
    const rows: ScalingRow[] = [];
    for (const [i, c] of cases.entries()) {
      signal?.throwIfAborted();
      const t0 = performance.now();
      try {
        const traced = c.tabs > 1 && TRACED_METHODS.has(c.method.id);
        const config = scalingConfig(c, s.seed);
        const figures = await runOne(hosted, config, c.model.target, s.globalBatch, RUN_TIMEOUT_MS, traced);
        rows.push({ ...scalingRowBase(c), ok: true, figures, ratios: null });
        const took = ((performance.now() - t0) / 1000).toFixed(0);
        log(`scaling ${i + 1}/${cases.length} ${caseLabel(c)}: ${summary(figures)}, ${took} s`);
      } catch (err) {
        signal?.throwIfAborted();
        rows.push({ ...scalingRowBase(c), ok: false, error: describeError(err) });
        log(`scaling ${i + 1}/${cases.length} ${caseLabel(c)} failed: ${describeError(err)}`);
      }
    }
    const compression = await compressionRuns(hosted, s, log, signal);
    const ratioRows = withRatios(rows);
    return {
      settings: s,
      overlapField: overlap,
      rows: ratioRows,
      compression,
      checks: scalingChecks(ratioRows, compression),
    };
  } finally {
    await hosted.close();
  }
}

/** Warm-up attempts: the first dial between fresh tabs can time out on a loaded machine. */
const WARM_UP_TRIES = 3;

/** One warm-up run, tried again when it fails (the part fails only if every try does). */
async function warmUp(
  hosted: HostedRoom,
  config: RunConfigInput,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await hosted.run({
        config,
        waitMs: RUN_WAIT_MS,
        timeoutMs: RUN_TIMEOUT_MS,
        trace: false,
        progress: false,
      });
      return;
    } catch (err) {
      signal?.throwIfAborted();
      if (i >= WARM_UP_TRIES) throw err;
      log(`scaling: warm-up try ${i} failed (${describeError(err)}); again`);
    }
  }
}

async function compressionRuns(
  hosted: HostedRoom,
  s: ScalingSettings,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<CompressionRow[]> {
  const c = s.compression;
  if (!c) return [];
  const rows: CompressionRow[] = [];
  for (const spec of c.specs) {
    signal?.throwIfAborted();
    const base = { spec, tabs: c.tabs, steps: c.steps };
    try {
      const config = compressionConfig(c, spec, s.globalBatch, s.seed);
      const f = await runOne(hosted, config, null, s.globalBatch, COMPRESSION_TIMEOUT_MS);
      rows.push({
        ...base,
        ok: true,
        bytesPerStep: f.bytesPerStep ?? Number.NaN,
        vsNone: null,
        finalAccuracy: f.finalAccuracy,
        accuracyDropPoints: null,
        reportedRatio: f.compressionRatio,
      });
      const acc = f.finalAccuracy === null ? '-' : f.finalAccuracy.toFixed(4);
      log(`scaling compress ${spec}: ${Math.round(f.bytesPerStep ?? 0)} bytes/step, accuracy ${acc}`);
    } catch (err) {
      signal?.throwIfAborted();
      rows.push({ ...base, ok: false, error: describeError(err) });
      log(`scaling compress ${spec} failed: ${describeError(err)}`);
    }
  }
  return compressionRatios(rows);
}
