import type { Browser } from 'playwright-core';
import { parseChromeTrace, parseRunReport } from '@peertrain/protocol';
import type { ChromeTrace, RunReport } from '@peertrain/protocol';
import { PROGRESS_MARKER } from './api.ts';
import { cpuBetween, markCpu } from './measure.ts';
import type { CpuMark } from './measure.ts';
import {
  caseLabel,
  headline,
  pipelineCases,
  pipelineConfig,
  recomputeCosts,
  zeroSkipping,
  samplesPerSec,
  sameCase,
  stepMs,
} from './pipeline-cases.ts';
import type { PipelineCase } from './pipeline-cases.ts';
import { runCompressPair } from './pipeline-compress.ts';
import type { CompressPart } from './pipeline-compress.ts';
import { analyzePipelineTrace } from './pipeline-spans.ts';
import { versus1f1b } from './pipeline-versus.ts';
import type { BenchSettings, CpuUse, PipelinePart, PipelineRow } from './report.ts';
import { describeError, openHostedRoom } from './hosted.ts';

// Part 4: pipeline parallelism. One bench tab hosts a coordinator for a room of its own and
// max(P) worker tabs (the real worker page, one browser context each) join it once; then every
// case runs on that same set of tabs, one after the other (a run takes the first P idle workers),
// so a case costs its steps plus profiling and the final evaluation, not a session's startup.
// Around the measured steps (after the warm-up) the driver reads /proc at the page's per-step
// progress lines: the CPU the tabs used while the bubble was measured.

const SETUP_TIMEOUT_MS = 120_000;
/** A run's wait for its workers (they are idle between runs: only a broken tab makes it wait). */
const RUN_WAIT_MS = 60_000;
/** One run's limit: the slowest case (P = 4, M = 16) takes well under a minute here. */
const RUN_TIMEOUT_MS = 300_000;

export interface PipelineOptions {
  browser: Browser;
  /** Static server URL (trailing slash). */
  baseUrl: string;
  settings: BenchSettings;
  /** Prefix of this run's PeerJS ids; the room is `<nonce>-pipe`. */
  nonce: string;
  /** Root of Chromium's process tree (CPU figures), null when unknown. */
  chromiumPid: number | null;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface PipelineResult {
  part: PipelinePart;
  /** Chrome trace of the headline 1F1B run (written beside the report). */
  headlineTrace: ChromeTrace | null;
}

/** Opens the host tab and the worker tabs, runs every case, closes everything. */
export async function measurePipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { browser, settings, log, signal } = opts;
  const ps = settings.pipeline;
  const cases = pipelineCases(ps);
  const workers = Math.max(...ps.stages, ps.compress?.stages ?? 0);
  const room = `${opts.nonce}-pipe`;
  // Progress marks of the current run, by number of steps done.
  let marks = new Map<number, CpuMark>();

  log(
    `pipeline: ${cases.length} runs of ${ps.steps} steps` +
      `${ps.compress ? ` + the CNN's activation pair (${ps.compress.steps} steps each)` : ''}, ` +
      `${workers} worker tabs, room ${room}`,
  );
  const hosted = await openHostedRoom({
    browser,
    baseUrl: opts.baseUrl,
    nonce: opts.nonce,
    room,
    workers,
    setupTimeoutMs: SETUP_TIMEOUT_MS,
    ...(settings.oneProfile === true ? { oneProfile: true } : {}),
    onHostConsole: (type, text) => {
      if (text.startsWith(PROGRESS_MARKER)) {
        const done = Number(text.slice(PROGRESS_MARKER.length));
        if (Number.isInteger(done) && done >= ps.warmupSteps) marks.set(done, markCpu(opts.chromiumPid));
      } else if (type === 'error' || type === 'pageerror') log(`coordinator tab ${type}: ${text}`);
    },
    log,
    ...(signal ? { signal } : {}),
  });
  try {
    log(`pipeline: ${hosted.joined} workers joined`);
    // Every tab's first run compiles its kernels and grows its heap: do that once, unmeasured.
    const warm: PipelineCase = {
      stages: workers,
      schedule: '1f1b',
      virtualStages: 1,
      microBatches: Math.max(...ps.microBatches),
      recompute: false,
      steps: 2,
    };
    await hosted.run({
      config: pipelineConfig(warm, ps),
      waitMs: RUN_WAIT_MS,
      timeoutMs: RUN_TIMEOUT_MS,
    });
    log(`pipeline: warm-up run done`);

    const rows: PipelineRow[] = [];
    let headlineTrace: ChromeTrace | null = null;
    // The trace kept is that of the headline 1F1B run with the most steps (the recompute pair's).
    const headlineKey = {
      stages: ps.headline.stages,
      schedule: '1f1b' as const,
      virtualStages: 1,
      microBatches: ps.headline.microBatches,
      recompute: false,
    };
    const headlineSteps = Math.max(0, ...cases.filter((c) => sameCase(c, headlineKey)).map((c) => c.steps));
    const isHeadline = (c: PipelineCase): boolean => sameCase(c, headlineKey) && c.steps === headlineSteps;
    for (const [i, c] of cases.entries()) {
      signal?.throwIfAborted();
      marks = new Map();
      const t0 = performance.now();
      try {
        const res = await hosted.run({
          config: pipelineConfig(c, ps),
          waitMs: RUN_WAIT_MS,
          timeoutMs: RUN_TIMEOUT_MS,
        });
        const report = parseRunReport(res.report);
        const trace = parseChromeTrace(res.trace);
        const a = marks.get(ps.warmupSteps);
        const b = marks.get(c.steps);
        const steady = a && b && c.steps > ps.warmupSteps ? { a, b, steps: c.steps - ps.warmupSteps } : null;
        const row = pipelineRow(c, report, trace, ps.warmupSteps, steady, opts.chromiumPid);
        rows.push(row);
        if (isHeadline(c)) headlineTrace = trace;
        log(
          `pipeline ${i + 1}/${cases.length} ${caseLabel(c)}: ` +
            (row.ok
              ? `bubble ${row.bubbleMeasured.toFixed(3)} (theory ${row.bubbleTheory.toFixed(3)}), ` +
                `step ${stepMs(row).toFixed(0)} ms, ${samplesPerSec(row).toFixed(0)} samples/s, ` +
                `${((performance.now() - t0) / 1000).toFixed(0)} s`
              : row.error),
        );
      } catch (err) {
        signal?.throwIfAborted();
        rows.push({ ...c, ok: false, error: describeError(err) });
        log(`pipeline ${i + 1}/${cases.length} ${caseLabel(c)} failed: ${describeError(err)}`);
      }
    }
    let compression: CompressPart | null = null;
    if (ps.compress) compression = await runCompressPair(hosted, ps.compress, log, signal);
    return {
      part: {
        rows,
        recompute: recomputeCosts(rows, ps),
        zeros: zeroSkipping(rows, ps),
        headline: headline(rows, ps.headline.stages, ps.headline.microBatches),
        versus: versus1f1b(rows),
        compression,
        traceFile: null,
      },
      headlineTrace,
    };
  } finally {
    await hosted.close();
  }
}

/**
 * A row from a run's report and trace, and the CPU marks at the end of the warm-up and of the last
 * step (`steps` steps apart); a report without its pipeline section is a failed row.
 */
export function pipelineRow(
  c: PipelineCase,
  report: RunReport,
  trace: ChromeTrace,
  warmupSteps: number,
  steady: { a: CpuMark; b: CpuMark; steps: number } | null,
  chromiumPid: number | null,
): PipelineRow {
  const p = report.pipeline;
  if (!p) return { ...c, ok: false, error: 'the report has no pipeline section' };
  const steadyMs = steady ? steady.b.t - steady.a.t : Number.NaN;
  const cpu: CpuUse | null = steady && steadyMs > 0 ? cpuBetween(steady.a, steady.b, chromiumPid) : null;
  return {
    ...c,
    ok: true,
    partition: report.config.partition,
    batch: report.config.batch,
    bubbleMeasured: p.bubbleMeasured,
    bubbleTheory: p.bubbleTheory,
    bytesBetweenStagesPerStep: p.bytesBetweenStagesPerStep ?? null,
    samplesPerSec: report.samplesPerSec,
    stepMsMedian: report.stepMsMedian,
    steadyStepMs: steady && steadyMs > 0 ? steadyMs / steady.steps : null,
    steadySamplesPerSec:
      steady && steadyMs > 0 ? (report.config.batch * steady.steps) / (steadyMs / 1000) : null,
    wallMs: report.wallMs,
    perStage: p.perStage.map((s) => ({
      layers: s.layers,
      parameterBytes: s.parameterBytes,
      peakActivationBytes: s.peakActivationBytes,
      peakActivationBytesNoRecompute: s.peakActivationBytesNoRecompute,
    })),
    backends: [...new Set(report.workers.map((w) => w.backend))],
    spans: analyzePipelineTrace(trace, { stages: p.stages, microBatches: p.microBatches, warmupSteps }),
    cpu,
  };
}
