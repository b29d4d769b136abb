import { SPAN_KINDS, parseChromeTrace } from '@peertrain/protocol';
import type { ChromeTrace, SpanKind } from '@peertrain/protocol';
import { commOverlap, laneOf } from '@peertrain/telemetry';
import type { CommOverlap } from '@peertrain/telemetry';

// Communication not hidden behind computation, measured from a run's Chrome trace (the
// coordinator's trace(), the CLI's --trace file): per rank (one trace process each) the union of
// its comm-lane spans (all-reduce, reduce-scatter, all-gather, send, recv, wait) minus the part
// during which one of its compute-lane spans (forward, backward, compute, optimizer) was open
// (telemetry's commOverlap). Overlapped all-reduce (--overlap) exists to shrink this figure;
// `exposedRatio` compares it with the same run without overlap (issue 10: at most 0.5 on the CNN).

export interface RankExposure extends CommOverlap {
  /** The trace's process name ("rank 0"). */
  name: string;
  /** Steps the rank's spans cover (after `skipSteps`). */
  steps: number;
}

export interface ExposedComm {
  ranks: RankExposure[];
  /** Mean over ranks of exposedMs / steps: communication a step waited on, ms. */
  exposedMsPerStep: number;
  /** Mean over ranks of commMs / steps. */
  commMsPerStep: number;
  /**
   * The step's critical path past compute, mean over steps: from the moment the last rank's
   * gradients were computed (the latest end of a forward, backward or compute span of the step,
   * any rank) to the end of the step's last communication (any rank). Unlike exposedMsPerStep it
   * leaves out a rank's wait for a slower rank's compute (a straggler, not communication): it is
   * what a synchronous step takes beyond its slowest computation. NaN without such steps.
   */
  criticalMsPerStep: number;
}

interface TimedSpan {
  kind: SpanKind;
  lane: 'compute' | 'comm';
  startMs: number;
  durMs: number;
  step: number;
}

/** Gradient-producing work: the optimizer and evaluations come after the exchange. */
const GRADIENT_KINDS: ReadonlySet<SpanKind> = new Set(['forward', 'backward', 'compute']);

/** criticalMsPerStep over every rank's spans. */
function criticalPerStep(all: readonly TimedSpan[]): number {
  const ends = new Map<number, { compute: number; comm: number }>();
  for (const s of all) {
    const e = ends.get(s.step) ?? { compute: -Infinity, comm: -Infinity };
    const end = s.startMs + s.durMs;
    if (s.lane === 'comm') e.comm = Math.max(e.comm, end);
    else if (GRADIENT_KINDS.has(s.kind)) e.compute = Math.max(e.compute, end);
    ends.set(s.step, e);
  }
  const past = [...ends.values()]
    .filter((e) => Number.isFinite(e.compute) && Number.isFinite(e.comm))
    .map((e) => Math.max(0, e.comm - e.compute));
  return past.length === 0 ? Number.NaN : past.reduce((a, b) => a + b, 0) / past.length;
}

const isSpanKind = (name: string): name is SpanKind => (SPAN_KINDS as readonly string[]).includes(name);

/**
 * Exposed communication per rank and per step. `skipSteps` leaves out the first steps (warm-up:
 * the first all-reduce also opens the ring's buffers). Spans are read in µs and reported in ms.
 */
export function exposedComm(trace: unknown, skipSteps = 0): ExposedComm {
  const t: ChromeTrace = parseChromeTrace(trace);
  const names = new Map<number, string>();
  for (const e of t.traceEvents)
    if (e.ph === 'M' && e.name === 'process_name') names.set(e.pid, String(e.args?.['name'] ?? e.pid));
  const byPid = new Map<number, TimedSpan[]>();
  for (const e of t.traceEvents) {
    if (e.ph !== 'X' || !isSpanKind(e.name)) continue;
    const step = Number(e.args?.['step'] ?? 0);
    if (step < skipSteps) continue;
    const list = byPid.get(e.pid) ?? [];
    list.push({
      kind: e.name,
      lane: laneOf(e.name),
      startMs: (e.ts ?? 0) / 1000,
      durMs: (e.dur ?? 0) / 1000,
      step,
    });
    byPid.set(e.pid, list);
  }
  const ranks = [...byPid.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([pid, spans]): RankExposure => ({
      name: names.get(pid) ?? `pid ${pid}`,
      steps: new Set(spans.map((s) => s.step)).size,
      ...commOverlap(spans),
    }));
  const perStep = (f: (r: RankExposure) => number): number =>
    ranks.length === 0 ? NaN : ranks.reduce((a, r) => a + f(r) / Math.max(1, r.steps), 0) / ranks.length;
  return {
    ranks,
    exposedMsPerStep: perStep((r) => r.exposedMs),
    commMsPerStep: perStep((r) => r.commMs),
    criticalMsPerStep: criticalPerStep([...byPid.values()].flat()),
  };
}

/** Exposed communication per step with overlap over the same without: the target is <= 0.5. */
export function exposedRatio(withOverlap: ExposedComm, without: ExposedComm): number {
  return withOverlap.exposedMsPerStep / without.exposedMsPerStep;
}

/** The bound on exposed communication with overlap against without (the CNN, 4 tabs). */
export const OVERLAP_EXPOSED_BOUND = 0.5;

/** A scaling row as far as the overlap check reads it. */
export interface ExposureRow {
  model: string;
  method: string;
  tabs: number;
  /** The run's exposedMsPerStep, where its trace was read. */
  exposedCommMsPerStep: number | null;
  /** The run's criticalMsPerStep, where its trace was read. */
  criticalCommMsPerStep: number | null;
}

/**
 * Part 6's overlap check: the `overlap` row against the `allreduce` row of the same model and tab
 * count (the CNN at 4 tabs, else the MLP at 3), exposed communication per step from their traces.
 * null when the pair was not run (no overlap row, a failed run).
 */
export function overlapExposureCheck(
  rows: readonly ExposureRow[],
): { what: string; value: string; pass: boolean | null } | null {
  for (const [model, tabs] of [
    ['cnn', 4],
    ['mlp', 3],
  ] as const) {
    const find = (method: string, field: 'exposedCommMsPerStep' | 'criticalCommMsPerStep'): number | null =>
      rows.find((r) => r.model === model && r.tabs === tabs && r.method === method)?.[field] ?? null;
    const withOverlap = find('overlap', 'criticalCommMsPerStep');
    const without = find('allreduce', 'criticalCommMsPerStep');
    if (withOverlap === null || without === null) continue;
    const ratio = without > 0 ? withOverlap / without : Number.NaN;
    // The per-rank figure (a rank's wait for a slower rank's compute counted as communication), for comparison.
    const [rankWith, rankWithout] = [
      find('overlap', 'exposedCommMsPerStep'),
      find('allreduce', 'exposedCommMsPerStep'),
    ];
    const shown = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
    const perRankText =
      rankWith !== null && rankWithout !== null
        ? `; per rank, waits for slower ranks included: ${shown(rankWith / rankWithout)}x (${rankWith.toFixed(1)} vs ${rankWithout.toFixed(1)} ms)`
        : '';
    return {
      what: `${model}, ${tabs} tabs: communication past the slowest rank's compute with overlap <= ${OVERLAP_EXPOSED_BOUND}x without (trace)`,
      value: `${shown(ratio)}x (${withOverlap.toFixed(1)} vs ${without.toFixed(1)} ms a step)${perRankText}`,
      pass: Number.isFinite(ratio) ? ratio <= OVERLAP_EXPOSED_BOUND : null,
    };
  }
  return null;
}
