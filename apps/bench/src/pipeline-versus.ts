import { caseLabel, findRow, scheduleLabel, stepMs } from './pipeline-cases.ts';
import type { OkRow, ScheduleSpec } from './pipeline-cases.ts';
import type { PipelineRow } from './report.ts';
import { fmt, fmtRatio, markdownTable } from './table.ts';

// Every schedule of the grid against 1F1B at the same (P, M), in the same bench run (pure; tested
// in pipeline-versus.test.ts): lower measured bubble, shorter step, and below 1F1B's own bound.
// The theories are the coordinator's (packages/schedules' bubbleTheory), never re-derived here.

export interface VersusEntry extends ScheduleSpec {
  stages: number;
  microBatches: number;
  steps: number;
  bubble: number;
  /** This schedule's own bound (interleaved and zb-h1 have their own). */
  bubbleTheory: number;
  stepMs: number;
  bubble1f1b: number;
  bubbleTheory1f1b: number;
  stepMs1f1b: number;
  /** bubble - 1F1B's measured bubble: negative = less idle than 1F1B. */
  bubbleDiff: number;
  /** step ms / 1F1B's step ms: below 1 = faster. */
  stepRatio: number;
  beatBubble: boolean;
  beatStep: boolean;
  /** Measured below 1F1B's theoretical bound (the target on a machine with a core per stage). */
  belowTheory1f1b: boolean;
}

/**
 * One entry per successful grid row (no recompute) of a schedule other than naive and 1f1b whose
 * (P, M) has a successful 1f1b row, compared with 1f1b's row of the same step count when there is
 * one (else its run with the most steps).
 */
export function versus1f1b(rows: readonly PipelineRow[]): VersusEntry[] {
  const out: VersusEntry[] = [];
  for (const r of rows) {
    if (!r.ok || r.recompute || r.schedule === 'naive' || r.schedule === '1f1b') continue;
    const key = { stages: r.stages, microBatches: r.microBatches, virtualStages: 1, recompute: false };
    const ref: OkRow | null =
      findRow(rows, { ...key, schedule: '1f1b' }, r.steps) ?? findRow(rows, { ...key, schedule: '1f1b' });
    if (!ref) continue;
    out.push({
      stages: r.stages,
      microBatches: r.microBatches,
      schedule: r.schedule,
      virtualStages: r.virtualStages,
      steps: r.steps,
      bubble: r.bubbleMeasured,
      bubbleTheory: r.bubbleTheory,
      stepMs: stepMs(r),
      bubble1f1b: ref.bubbleMeasured,
      bubbleTheory1f1b: ref.bubbleTheory,
      stepMs1f1b: stepMs(ref),
      bubbleDiff: r.bubbleMeasured - ref.bubbleMeasured,
      stepRatio: stepMs(r) / stepMs(ref),
      beatBubble: r.bubbleMeasured < ref.bubbleMeasured,
      beatStep: stepMs(r) < stepMs(ref),
      belowTheory1f1b: r.bubbleMeasured < ref.bubbleTheory,
    });
  }
  return out;
}

function verdict(e: VersusEntry): string {
  if (e.beatBubble && e.beatStep) return 'yes (bubble and step)';
  if (e.beatBubble) return 'bubble only';
  if (e.beatStep) return 'step only';
  return 'no';
}

/** "+5.1 pp" */
function pp(x: number): string {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} pp` : '-';
}

export function versusTable(entries: readonly VersusEntry[]): string {
  return markdownTable(
    [
      'P',
      'M',
      'schedule',
      'bubble',
      'theory',
      '1F1B bubble',
      '1F1B theory',
      'vs 1F1B',
      'step ms',
      '1F1B step ms',
      'step / 1F1B',
      'beat 1F1B?',
      'below 1F1B theory',
    ],
    entries.map((e) => [
      String(e.stages),
      String(e.microBatches),
      scheduleLabel(e),
      fmt(e.bubble, 3),
      fmt(e.bubbleTheory, 3),
      fmt(e.bubble1f1b, 3),
      fmt(e.bubbleTheory1f1b, 3),
      pp(e.bubbleDiff),
      fmt(e.stepMs, 0),
      fmt(e.stepMs1f1b, 0),
      fmtRatio(e.stepRatio),
      verdict(e),
      e.belowTheory1f1b ? 'yes' : 'no',
    ]),
    [
      'right',
      'right',
      'left',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'left',
      'left',
    ],
  );
}

/** One sentence per schedule: where it measured a lower bubble than 1F1B, and where a shorter step. */
export function beatLines(entries: readonly VersusEntry[]): string[] {
  const bySchedule = new Map<string, VersusEntry[]>();
  for (const e of entries) bySchedule.set(scheduleLabel(e), [...(bySchedule.get(scheduleLabel(e)) ?? []), e]);
  const at = (es: readonly VersusEntry[]): string =>
    es.length === 0 ? 'nowhere' : es.map((e) => `P=${e.stages} M=${e.microBatches}`).join(', ');
  return [...bySchedule].map(
    ([name, es]) =>
      `- ${name} beat 1F1B's measured bubble in ${es.filter((e) => e.beatBubble).length} of ${es.length} ` +
      `(P, M): ${at(es.filter((e) => e.beatBubble))}; shorter step at ${at(es.filter((e) => e.beatStep))}.`,
  );
}

/**
 * The check at the headline (P, M): each of interleaved and zb-h1 below 1F1B's measured
 * bubble in this run (and, the target on a machine with a core per stage, below 1F1B's theory).
 */
export function headlineVersusLines(
  entries: readonly VersusEntry[],
  stages: number,
  microBatches: number,
): string[] {
  return entries
    .filter((e) => e.stages === stages && e.microBatches === microBatches && e.schedule !== 'gpipe')
    .map(
      (e) =>
        `- ${caseLabel({ ...e, recompute: false })}: bubble ${fmt(e.bubble, 3)} (theory ${fmt(e.bubbleTheory, 3)}) ` +
        `vs 1F1B's ${fmt(e.bubble1f1b, 3)} in this run: ${e.beatBubble ? 'below (met)' : 'NOT below'}; ` +
        `vs 1F1B's theory ${fmt(e.bubbleTheory1f1b, 3)}: ${e.belowTheory1f1b ? 'below' : 'not below'} ` +
        `(the target on a machine with a core per stage).`,
    );
}
