import type { RunReport } from '@peertrain/coordinator';
import { overlapExposureCheck } from './exposed-comm.ts';
import { FILLED_DILOCO, OVERLAPPED_DILOCO } from './scaling-cases.ts';
import type { ScalingCase, ScalingSettings } from './scaling-cases.ts';

// Part 6's figures (pure): one row per run from its RunReport (read as JSON: fields newer than this
// bench's types are read if present) and the run's live timeline (steps and evaluations with their
// times), the ratios against the one-tab row, the compression table and the brief's checks.
// A figure the report lacks is computed from the timeline; one neither has is null.
//
// Bytes come from the timeline's per-step deltas, not the report's totals: a worker reports the
// bytes its mesh has sent since the tab opened, so a tab that served an earlier run (every run of
// this part shares the tabs) carries that run's bytes into the next report's bytesSent (and its
// bytesPerSample, bytesToTarget) and into the first step's delta. The steps after the first are
// exact; step 0 is taken at their mean.

/** A step of the coordinator's live view (StepPoint): times in ms since the first step's grant. */
export interface TimelineStep {
  step: number;
  tMs: number;
  computeMs: number;
  commMs: number;
  /** Bytes every peer sent during the step (summed). */
  bytes: number | null;
}

export interface TimelineEval {
  /** Steps done when evaluated. */
  step: number;
  accuracy: number;
  tMs: number;
}

export interface Timeline {
  steps: TimelineStep[];
  evals: TimelineEval[];
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOr = (v: unknown, or: number | null = null): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : or;

/** The page's `{ steps, evals }` (unknown in); malformed entries are left out, never thrown on. */
export function parseTimeline(v: unknown): Timeline {
  const o = isObj(v) ? v : {};
  const list = (k: string): Json[] => (Array.isArray(o[k]) ? (o[k] as unknown[]).filter(isObj) : []);
  const steps = list('steps').flatMap((s): TimelineStep[] => {
    const step = numOr(s.step);
    const tMs = numOr(s.tMs);
    if (step === null || tMs === null) return [];
    return [
      { step, tMs, computeMs: numOr(s.computeMs, 0)!, commMs: numOr(s.commMs, 0)!, bytes: numOr(s.bytes) },
    ];
  });
  const evals = list('evals').flatMap((e): TimelineEval[] => {
    const step = numOr(e.step);
    const accuracy = numOr(e.accuracy);
    const tMs = numOr(e.tMs);
    return step === null || accuracy === null || tMs === null ? [] : [{ step, accuracy, tMs }];
  });
  return { steps, evals };
}

/** Whether and when a run reached its target. */
export interface TargetFigures {
  reached: boolean;
  /** Steps done at the evaluation that reached it. */
  step: number | null;
  /** From the first step's grant to that evaluation. */
  timeMs: number | null;
  samples: number | null;
  bytes: number | null;
  /** 'report': the coordinator's `target`; 'timeline': computed here from the evaluations. */
  source: 'report' | 'timeline';
}

/** What one run measured. */
export interface RunFigures {
  steps: number;
  target: TargetFigures;
  samplesPerSec: number;
  /** Mean over workers of compute / (compute + communication). */
  computeUtilization: number | null;
  /** Per rank, where the report gives it. */
  utilizationByRank: number[] | null;
  /** The report's: bytes the workers' meshes sent since their tabs opened (earlier runs included). */
  bytesSent: number;
  /** From the steps after the first (exact), else the report's figures. */
  bytesPerSample: number | null;
  bytesPerStep: number | null;
  finalAccuracy: number | null;
  /** Asynchronous methods: parameter versions behind (report.staleness). */
  staleness: { mean: number; max: number } | null;
  /** report.compression.bytesRatio: the method's own wire / fp32 measure. */
  compressionRatio: number | null;
  backends: string[];
  /**
   * Communication not hidden behind compute, ms a step (exposed-comm.ts), from the run's trace:
   * only the synchronous all-reduce runs with and without overlap on more than one tab read it.
   */
  exposedCommMsPerStep?: number;
  /** The step's communication past the slowest rank's compute, ms (exposed-comm.ts criticalMsPerStep). */
  criticalCommMsPerStep?: number;
}

/** Mean bytes of the steps after the first (see above); null without such a step carrying bytes. */
export function steadyBytesPerStep(t: Timeline): number | null {
  const later = t.steps.filter((s) => s.step > 0 && s.bytes !== null);
  return later.length > 0 ? later.reduce((a, s) => a + (s.bytes ?? 0), 0) / later.length : null;
}

/** Bytes of the first `steps` steps, step 0 at `perStep` (null when a step lacks its bytes). */
function bytesUpTo(t: Timeline, steps: number, perStep: number | null): number | null {
  if (perStep === null) return null;
  const upTo = t.steps.filter((s) => s.step > 0 && s.step < steps);
  if (upTo.some((s) => s.bytes === null)) return null;
  return perStep + upTo.reduce((a, s) => a + (s.bytes ?? 0), 0);
}

/** First evaluation at or above `target` in the timeline (its bytes: bytesUpTo). */
function targetFromTimeline(t: Timeline, target: number, globalBatch: number): TargetFigures {
  const hit = t.evals.find((e) => e.accuracy >= target);
  if (!hit)
    return { reached: false, step: null, timeMs: null, samples: null, bytes: null, source: 'timeline' };
  return {
    reached: true,
    step: hit.step,
    timeMs: hit.tMs,
    samples: globalBatch * hit.step,
    bytes: null,
    source: 'timeline',
  };
}

function targetFromReport(v: unknown): TargetFigures | null {
  if (!isObj(v) || typeof v.reached !== 'boolean') return null;
  return {
    reached: v.reached,
    step: numOr(v.step),
    timeMs: numOr(v.timeToTargetMs),
    samples: numOr(v.samplesToTarget),
    bytes: numOr(v.bytesToTarget),
    source: 'report',
  };
}

/**
 * A run's figures. `raw` is the report as the page returned it (newer fields: target,
 * computeUtilization, bytesPerSample, staleness, compression); `report` its validated known part.
 */
export function runFigures(
  raw: unknown,
  report: RunReport,
  timeline: Timeline,
  target: number | null,
  globalBatch: number,
): RunFigures {
  const o = isObj(raw) ? raw : {};
  const steps = timeline.steps.length > 0 ? timeline.steps.length : report.loss.length;
  const fromReport = targetFromReport(o.target);
  const found =
    target === null
      ? { reached: false, step: null, timeMs: null, samples: null, bytes: null, source: 'timeline' as const }
      : (fromReport ?? targetFromTimeline(timeline, target, globalBatch));
  const perStep = steadyBytesPerStep(timeline);
  const tgtBytes = found.step === null ? null : bytesUpTo(timeline, found.step, perStep);
  const tgt = { ...found, bytes: tgtBytes ?? found.bytes };
  const compute = timeline.steps.reduce((a, s) => a + s.computeMs, 0);
  const busy = timeline.steps.reduce((a, s) => a + s.computeMs + s.commMs, 0);
  const workers = Array.isArray(o.workers) ? (o.workers as unknown[]) : [];
  const byRank = workers.map((w) => (isObj(w) ? numOr(w.computeUtilization) : null));
  const samples = globalBatch * steps;
  const lastEval = timeline.evals.at(-1)?.accuracy ?? report.evals.at(-1)?.accuracy ?? null;
  const st = isObj(o.staleness) ? o.staleness : null;
  const stMean = numOr(st?.mean);
  const stMax = numOr(st?.max);
  return {
    steps,
    target: tgt,
    samplesPerSec: report.samplesPerSec,
    computeUtilization: numOr(o.computeUtilization) ?? (busy > 0 ? compute / busy : null),
    utilizationByRank:
      byRank.length > 0 && byRank.every((u) => u !== null) ? byRank.filter((u) => u !== null) : null,
    bytesSent: report.bytesSent,
    bytesPerSample:
      perStep !== null
        ? perStep / globalBatch
        : (numOr(o.bytesPerSample) ?? (samples > 0 ? report.bytesSent / samples : null)),
    bytesPerStep: perStep ?? (steps > 0 ? report.bytesSent / steps : null),
    finalAccuracy: numOr(report.testAccuracy) ?? lastEval,
    staleness: stMean !== null && stMax !== null ? { mean: stMean, max: stMax } : null,
    compressionRatio: isObj(o.compression) ? numOr(o.compression.bytesRatio) : null,
    backends: [...new Set(report.workers.map((w) => w.backend))],
  };
}

/** One run of the table: its case (by key) and what it measured, or why it failed. */
export type ScalingRow = {
  model: 'mlp' | 'cnn';
  target: number;
  method: string;
  label: string;
  tabs: number;
  batch: number;
} & ({ ok: true; figures: RunFigures; ratios: ScalingRatios | null } | { ok: false; error: string });

/**
 * Against the one-tab row: `method` is the same method's one-tab row, `sync` the one-tab
 * synchronous all-reduce row (plain training at the same global batch: issue 10's baseline).
 * time: N tabs / 1 tab (below 1 is faster); samplesPerSec: N tabs / 1 tab (above 1 is faster).
 */
export interface ScalingRatios {
  timeVsMethod: number | null;
  timeVsSync: number | null;
  samplesPerSecVsMethod: number | null;
  samplesPerSecVsSync: number | null;
}

export function scalingRowBase(c: ScalingCase): Omit<ScalingRow, 'ok' | 'figures' | 'ratios' | 'error'> {
  return {
    model: c.model.model,
    target: c.model.target,
    method: c.method.id,
    label: c.method.label,
    tabs: c.tabs,
    batch: c.batch,
  };
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a != null && b != null && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;

/** Fills every ok row's ratios against the one-tab rows of its model (null where a side is missing). */
export function withRatios(rows: readonly ScalingRow[]): ScalingRow[] {
  const oneTab = (model: string, method: string): RunFigures | null => {
    const r = rows.find((x) => x.model === model && x.method === method && x.tabs === 1);
    return r?.ok ? r.figures : null;
  };
  return rows.map((r) => {
    if (!r.ok) return r;
    const m = oneTab(r.model, r.method);
    const s = oneTab(r.model, 'allreduce');
    const f = r.figures;
    const time = f.target.reached ? f.target.timeMs : null;
    const timeOf = (b: RunFigures | null): number | null => (b?.target.reached ? b.target.timeMs : null);
    return {
      ...r,
      ratios: {
        timeVsMethod: ratio(time, timeOf(m)),
        timeVsSync: ratio(time, timeOf(s)),
        samplesPerSecVsMethod: ratio(f.samplesPerSec, m?.samplesPerSec),
        samplesPerSecVsSync: ratio(f.samplesPerSec, s?.samplesPerSec),
      },
    };
  });
}

/** One compression run: bytes per step against the uncompressed run of the same N and steps. */
export type CompressionRow = { spec: string; tabs: number; steps: number } & (
  | {
      ok: true;
      bytesPerStep: number;
      /** bytesPerStep / that of spec 'none' (null without it). */
      vsNone: number | null;
      finalAccuracy: number | null;
      /** Accuracy points (x100) below the uncompressed run. */
      accuracyDropPoints: number | null;
      /** The method's own measure, where the report has one. */
      reportedRatio: number | null;
    }
  | { ok: false; error: string }
);

/** Fills vsNone and the accuracy drop of every ok row against the 'none' row. */
export function compressionRatios(rows: readonly CompressionRow[]): CompressionRow[] {
  const base = rows.find((r) => r.spec === 'none');
  const b = base?.ok ? base : null;
  return rows.map((r) => {
    if (!r.ok) return r;
    const drop =
      b && b.finalAccuracy !== null && r.finalAccuracy !== null
        ? 100 * (b.finalAccuracy - r.finalAccuracy)
        : null;
    return { ...r, vsNone: ratio(r.bytesPerStep, b?.bytesPerStep), accuracyDropPoints: drop };
  });
}

/** A pass/fail line of issue 10's "Done when". `pass` null: not measured in this run. */
export interface ScalingCheck {
  what: string;
  value: string;
  pass: boolean | null;
}

/** The compression bounds of issue 10 (bytes per step vs fp32) and the accuracy slack, in points. */
export const COMPRESSION_BOUNDS: Record<string, number> = { fp16: 0.51, int8: 0.26, 'topk:0.01': 0.03 };
export const ACCURACY_SLACK_POINTS = 0.5;

function best(rows: readonly ScalingRow[], model: string, tabs: number): ScalingRow | null {
  let pick: ScalingRow | null = null;
  let pickT = Infinity;
  for (const r of rows) {
    if (!r.ok || r.model !== model || r.tabs !== tabs) continue;
    const t = r.ratios?.timeVsSync;
    if (t != null && t < pickT) [pick, pickT] = [r, t];
  }
  return pick;
}

/** Every run's compute utilization at least 0.8 (a run that reported none fails it). */
function utilizationCheck(what: string, runs: readonly ScalingRow[]): ScalingCheck {
  const utils = runs.map((r) => (r.ok ? r.figures.computeUtilization : null));
  const known = utils.filter((u): u is number => u !== null);
  return {
    what,
    value:
      known.length > 0 ? `min ${Math.min(...known).toFixed(2)} over ${runs.length} runs` : 'not reported',
    pass: utils.every((u) => u !== null && u >= 0.8),
  };
}

/**
 * Issue 10's checks: 3 tabs on the MLP and 4 on the CNN within 1.5x of one tab's time to target
 * (best method), diloco at H >= 20 with compute utilization >= 0.8 (plain, and with the outer step
 * overlapped), each compression under its bound.
 */
export function scalingChecks(
  rows: readonly ScalingRow[],
  compression: readonly CompressionRow[],
): ScalingCheck[] {
  const out: ScalingCheck[] = [];
  for (const [model, tabs] of [
    ['mlp', 3],
    ['cnn', 4],
  ] as const) {
    // Against one tab of sync all-reduce: a run of some methods only (--scaling-methods) may have none.
    if (!rows.some((r) => r.model === model && r.method === 'allreduce' && r.tabs === 1)) continue;
    const b = best(rows, model, tabs);
    const t = b?.ok ? b.ratios?.timeVsSync : null;
    out.push({
      what: `${model}: ${tabs} tabs reach the target within 1.5x of one tab (best method)`,
      value: b && t != null ? `${t.toFixed(2)}x (${b.label})` : 'no run reached the target',
      pass: t != null ? t <= 1.5 : false,
    });
  }
  const diloco = rows.filter((r) => r.ok && /^diloco-(\d+)$/.test(r.method) && r.tabs > 1);
  const highH = diloco.filter((r) => Number(r.method.slice('diloco-'.length)) >= 20);
  if (highH.length > 0)
    out.push(utilizationCheck('diloco H >= 20 (2-4 tabs): compute utilization >= 0.8', highH));
  const late = rows.filter((r) => r.method === OVERLAPPED_DILOCO && r.tabs > 1);
  if (late.length > 0)
    out.push(
      utilizationCheck('diloco H = 20, outer step overlapped (2-4 tabs): compute utilization >= 0.8', late),
    );
  const filled = rows.filter((r) => r.method === FILLED_DILOCO && r.tabs > 1);
  if (filled.length > 0)
    out.push(
      utilizationCheck(
        'diloco H = 20, outer step overlapped, waits filled (2-4 tabs): compute utilization >= 0.8',
        filled,
      ),
    );
  const overlap = overlapExposureCheck(
    rows.map((r) => ({
      model: r.model,
      method: r.method,
      tabs: r.tabs,
      exposedCommMsPerStep: r.ok ? (r.figures.exposedCommMsPerStep ?? null) : null,
      criticalCommMsPerStep: r.ok ? (r.figures.criticalCommMsPerStep ?? null) : null,
    })),
  );
  if (overlap) out.push(overlap);
  for (const r of compression) {
    const bound = COMPRESSION_BOUNDS[r.spec];
    if (bound === undefined) continue;
    if (!r.ok) {
      out.push({ what: `${r.spec}: bytes per step <= ${bound}x fp32`, value: r.error, pass: false });
      continue;
    }
    const accOk = r.accuracyDropPoints === null ? null : r.accuracyDropPoints <= ACCURACY_SLACK_POINTS;
    const bytesOk = r.vsNone === null ? null : r.vsNone <= bound;
    out.push({
      what: `${r.spec}: bytes per step <= ${bound}x fp32, accuracy within ${ACCURACY_SLACK_POINTS} point`,
      value: `${r.vsNone === null ? '-' : `${r.vsNone.toFixed(3)}x`}, ${r.accuracyDropPoints === null ? '-' : `${r.accuracyDropPoints.toFixed(2)} points below`}`,
      pass: bytesOk === null || accOk === null ? null : bytesOk && accOk,
    });
  }
  return out;
}

/** Part 6 in the JSON report. */
export interface ScalingPart {
  settings: ScalingSettings;
  /** The run configuration's overlap switch, if it has one (else no overlap rows). */
  overlapField: string | null;
  rows: ScalingRow[];
  compression: CompressionRow[];
  checks: ScalingCheck[];
}
