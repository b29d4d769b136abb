import { caseLabel, findRow, maxPeak, samplesPerSec, scheduleLabel, stepMs } from './pipeline-cases.ts';
import { renderCompress } from './pipeline-compress.ts';
import { beatLines, headlineVersusLines, versusTable } from './pipeline-versus.ts';
import type { Headline, OkRow, RecomputeCost, ZeroSkipping } from './pipeline-cases.ts';
import type { PipelinePart, PipelineRow } from './report.ts';
import { fmt, fmtBytes, fmtPercent, fmtRatio, markdownTable } from './table.ts';

// Markdown of part 4 (pure; tested in pipeline-table.test.ts): the grid of runs, recomputation's
// cost, the brief's checks, and where the headline run's step time goes.

const R = 'right' as const;
const L = 'left' as const;

/** A signed fraction as percentage points, "+5.1 pp". */
function fmtPp(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x)
    ? '-'
    : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} pp`;
}

/** A signed relative change, "+12%". */
function fmtChange(x: number): string {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${Math.round(100 * x)}%` : '-';
}

function bytesOrDash(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : fmtBytes(x);
}

export function pipelineGridTable(rows: readonly PipelineRow[]): string {
  return markdownTable(
    [
      'P',
      'schedule',
      'M',
      'recompute',
      'steps',
      'bubble',
      'theory',
      'diff',
      'samples/s',
      'step ms',
      'bytes/step between stages',
      'peak act. stage 0',
      'peak act. max (stage)',
      'imbalance bubble',
      'stages at once',
      'none computing',
      'Chromium cores',
      'machine busy',
    ],
    rows.map((r) => {
      const head = [
        String(r.stages),
        scheduleLabel(r) + (r.skipZeros === false ? ', zeros sent' : ''),
        String(r.microBatches),
        r.recompute ? 'yes' : 'no',
        String(r.steps),
      ];
      // The reason is listed under the table (and in the report's errors).
      if (!r.ok) return [...head, 'failed', ...new Array<string>(12).fill('-')];
      const mp = maxPeak(r);
      return [
        ...head,
        fmt(r.bubbleMeasured, 3),
        fmt(r.bubbleTheory, 3),
        fmtPp(r.bubbleMeasured - r.bubbleTheory),
        fmt(samplesPerSec(r), 0),
        fmt(stepMs(r), 0),
        bytesOrDash(r.bytesBetweenStagesPerStep),
        bytesOrDash(r.perStage[0]?.peakActivationBytes),
        `${bytesOrDash(mp.bytes)} (${mp.stage})`,
        fmt(r.spans?.imbalanceBubble, 3),
        fmt(r.spans?.meanConcurrency, 2),
        fmtPercent(r.spans?.concurrency[0]),
        fmt(r.cpu?.chromiumCores, 2),
        fmtPercent(r.cpu?.machineBusy),
      ];
    }),
    [R, L, R, L, R, R, R, R, R, R, R, R, R, R, R, R, R, R],
  );
}

export function recomputeTable(costs: readonly RecomputeCost[]): string {
  return markdownTable(
    [
      'run',
      'step ms',
      'step ms +recompute',
      'step time',
      'stage-0 peak act.',
      '+recompute',
      'stage-0 memory',
      'max-stage peak act.',
      '+recompute',
    ],
    costs.map((c) => [
      caseLabel({ ...c, recompute: false }),
      fmt(c.stepMs, 0),
      fmt(c.stepMsRecompute, 0),
      fmtChange(c.stepIncrease),
      bytesOrDash(c.stage0PeakBytes),
      bytesOrDash(c.stage0PeakBytesRecompute),
      fmtChange(-c.stage0PeakDecrease),
      bytesOrDash(c.maxPeakBytes),
      bytesOrDash(c.maxPeakBytesRecompute),
    ]),
    [L, R, R, R, R, R, R, R, R],
  );
}

/** The recompute cases with every zero sent between stages against zeros skipped (the default). */
export function zerosTable(entries: readonly ZeroSkipping[]): string {
  const ratio = (a: number | null, b: number | null): string => (a !== null && b ? fmtRatio(a / b) : '-');
  return markdownTable(
    [
      'run',
      'bytes/step, zeros sent',
      'zeros skipped',
      'bytes',
      'step ms, zeros sent',
      'zeros skipped',
      'step time',
      'bubble, zeros sent',
      'zeros skipped',
    ],
    entries.map((e) => [
      caseLabel({ ...e, virtualStages: 1, recompute: false }),
      bytesOrDash(e.bytesSent),
      bytesOrDash(e.bytesSkipped),
      ratio(e.bytesSkipped, e.bytesSent),
      fmt(e.stepMsSent, 0),
      fmt(e.stepMsSkipped, 0),
      fmtChange(e.stepMsSkipped / e.stepMsSent - 1),
      fmt(e.bubbleSent, 3),
      fmt(e.bubbleSkipped, 3),
    ]),
    [L, R, R, R, R, R, R, R, R],
  );
}

/** The brief's checks as sentences with a verdict. */
export function headlineLines(h: Headline): string[] {
  const at = `P=${h.stages}, M=${h.microBatches}`;
  const lines: string[] = [];
  if (h.bubbleMeasured !== null && h.bubbleError !== null) {
    const ok = Math.abs(h.bubbleError) <= h.bubbleTolerance;
    lines.push(
      `- 1F1B bubble at ${at}: measured ${fmt(h.bubbleMeasured, 3)} vs theory ${fmt(h.bubbleTheory, 3)} ` +
        `(${fmtPp(h.bubbleError)}; target within ${fmt(100 * h.bubbleTolerance, 0)} pp): ${ok ? 'met' : 'NOT met'}.`,
    );
  } else {
    lines.push(`- 1F1B bubble at ${at}: no successful run.`);
  }
  if (h.peakRatio !== null) {
    lines.push(
      `- Stage-0 peak activations at ${at}: 1F1B ${bytesOrDash(h.stage0Peak1f1b)} vs GPipe ` +
        `${bytesOrDash(h.stage0PeakGpipe)} = ${fmtRatio(h.peakRatio)} (target at most 0.50x): ${h.peakRatio <= 0.5 ? 'met' : 'NOT met'}.`,
    );
  }
  if (h.peakRatioRecompute !== null) {
    lines.push(
      `- With recomputation: 1F1B ${bytesOrDash(h.stage0PeakRecompute)} = ${fmtRatio(h.peakRatioRecompute)} of GPipe's` +
        `${h.peakRatio !== null && h.peakRatioRecompute < h.peakRatio ? ' (lower still)' : ' (NOT lower than without)'}.`,
    );
  }
  return lines;
}

/** Per stage of each given run: forward, backward, communication and idle ms per measured step. */
export function stageTimeTable(rows: readonly OkRow[]): string {
  const body: string[][] = [];
  for (const r of rows) {
    const sp = r.spans;
    if (!sp) continue;
    for (const s of sp.stages) {
      const layers = r.perStage[s.stage]?.layers;
      body.push([
        caseLabel(r),
        `${s.stage}${layers ? ` (${layers[0]}-${layers[1]})` : ''}`,
        fmt(s.forwardMs, 0),
        fmt(s.backwardMs, 0),
        fmt(s.backwardMs / s.forwardMs, 1),
        fmt(s.commMs, 0),
        fmt(s.idleMs, 0),
        fmtPercent(s.idleMs / sp.makespanMs),
      ]);
    }
  }
  return markdownTable(
    ['run', 'stage (layers)', 'forward ms', 'backward ms', 'bwd/fwd', 'comm ms', 'idle ms', 'idle'],
    body,
    [L, L, R, R, R, R, R, R],
  );
}

/**
 * The runs whose stage times are worth showing: naive, gpipe and 1f1b (without and with
 * recomputation) at the headline (P, M), each its run with the most steps.
 */
export function stageTimeRows(part: PipelinePart): OkRow[] {
  const { stages, microBatches } = part.headline;
  const at = { stages, virtualStages: 1, microBatches, recompute: false };
  const wanted = [
    { ...at, schedule: 'naive' as const, microBatches: 1 },
    { ...at, schedule: 'gpipe' as const },
    { ...at, schedule: '1f1b' as const },
    { ...at, schedule: '1f1b' as const, recompute: true },
    { ...at, schedule: 'interleaved' as const, virtualStages: 2 },
    { ...at, schedule: 'zb-h1' as const },
  ];
  return wanted.flatMap((c) => findRow(part.rows, c) ?? []);
}

/** Concurrency profile of a run: "0: 19% · 1: 37% · 2: 26% · 3: 18% · 4: 0%". */
export function concurrencyLine(r: OkRow): string {
  const c = r.spans?.concurrency ?? [];
  return c.map((x, k) => `${k}: ${fmtPercent(x)}`).join(' · ');
}

/** The whole part-4 section. */
export function renderPipeline(part: PipelinePart): string[] {
  const failures = part.rows.flatMap((r) =>
    r.ok ? [] : [`- ${caseLabel(r)} (${r.steps} steps) failed: ${r.error}`],
  );
  const out: string[] = [
    '## Pipeline parallelism (wideMlp, synthetic data, wasm)',
    '',
    ...headlineLines(part.headline),
    ...headlineVersusLines(part.versus, part.headline.stages, part.headline.microBatches),
    '',
    pipelineGridTable(part.rows),
    ...(failures.length > 0 ? ['', ...failures] : []),
    '',
    '"bubble": the coordinator\'s measured idle fraction (median over steps after 3 warm-up steps); ' +
      '"theory": the schedule\'s own bound (packages/schedules\' bubbleTheory: (P-1)/(M+P-1) for naive, gpipe and 1f1b, ' +
      '(P-1)/(VM+P-1) for interleaved, (P-1)/(3M+P-1) for zb-h1 at M >= P); ' +
      '"bytes/step between stages": activations and their gradients, all stages; ' +
      '"samples/s", "step ms": over the steps after the warm-up; ' +
      '"imbalance bubble": what these measured stage times would give under 1F1B with free links and a core per stage; ' +
      '"stages at once": mean number of stages computing during a step (busy / makespan); ' +
      '"none computing": share of the step when no stage computes (every stage waits on a link); ' +
      '"Chromium cores": Chromium CPU ms per ms over the measured steps; "machine busy": all cores, every process.',
  ];
  if (part.versus.length > 0)
    out.push(
      '',
      '### Which schedules beat 1F1B in this run',
      '',
      ...beatLines(part.versus),
      '',
      versusTable(part.versus),
    );
  if (part.compression) out.push('', ...renderCompress(part.compression));
  if (part.recompute.length > 0)
    out.push('', '### Cost of recomputation', '', recomputeTable(part.recompute));
  if (part.zeros && part.zeros.length > 0)
    out.push(
      '',
      '### Skipping zeros between stages',
      '',
      zerosTable(part.zeros),
      '',
      'Every other run skips zeros (`activationSkipZeros`, the default, lossless): a ReLU output crosses as a ' +
        'bit mask and its non-zero values, and its gradient is zeroed where the output was before it goes back. ' +
        '"zeros sent": the same run with `activationSkipZeros: false`.',
    );
  const detail = stageTimeRows(part);
  if (detail.length > 0) {
    out.push(
      '',
      `### Where the step goes at P=${part.headline.stages} (median per measured step, from the trace)`,
      '',
      stageTimeTable(detail),
      '',
      ...detail.map(
        (r) => `- ${caseLabel(r)}: stages computing at once, share of the step: ${concurrencyLine(r)}`,
      ),
    );
  }
  if (part.traceFile)
    out.push('', `Trace of the headline 1F1B run: \`${part.traceFile}\` (open in ui.perfetto.dev).`);
  return out;
}
