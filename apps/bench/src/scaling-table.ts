import type { CompressionRow, ScalingCheck, ScalingPart, ScalingRow } from './scaling-figures.ts';
import { fmt, fmtBytes, fmtPercent, fmtRatio, markdownTable } from './table.ts';

// Part 6's markdown (pure): one table per model, the compression table, the checks.

const R = 'right' as const;
const L = 'left' as const;

const HEADERS = [
  'method',
  'tabs',
  'batch/tab',
  'steps',
  'target at step',
  'time to target s',
  'x 1 tab',
  'x 1 tab sync',
  'samples/s',
  'x 1 tab (s/s)',
  'compute util.',
  'bytes/sample',
  'final acc',
  'note',
];

const opt = (x: number | null | undefined): number | undefined => (x === null ? undefined : x);

function rowCells(r: ScalingRow): string[] {
  const head = [r.label, String(r.tabs), String(r.batch)];
  if (!r.ok) return [...head, ...HEADERS.slice(3, -1).map(() => '-'), `failed: ${r.error}`];
  const f = r.figures;
  const t = f.target;
  const notes = [
    t.reached ? '' : 'target not reached',
    f.staleness ? `staleness ${fmt(f.staleness.mean, 1)} (max ${f.staleness.max})` : '',
  ].filter((s) => s !== '');
  return [
    ...head,
    String(f.steps),
    t.reached ? String(t.step ?? '-') : '-',
    t.reached && t.timeMs !== null ? fmt(t.timeMs / 1000, 1) : '-',
    fmtRatio(opt(r.ratios?.timeVsMethod)),
    fmtRatio(opt(r.ratios?.timeVsSync)),
    fmt(f.samplesPerSec, 0),
    fmtRatio(opt(r.ratios?.samplesPerSecVsMethod)),
    fmt(opt(f.computeUtilization), 2),
    f.bytesPerSample === null ? '-' : fmtBytes(Math.round(f.bytesPerSample)),
    fmtPercent(opt(f.finalAccuracy)),
    notes.join('; '),
  ];
}

/** The table of one model's runs (rows in run order: method, then tabs). */
export function scalingTable(rows: readonly ScalingRow[]): string {
  return markdownTable(HEADERS, rows.map(rowCells), [L, R, R, R, R, R, R, R, R, R, R, R, R, L]);
}

export function compressionTable(rows: readonly CompressionRow[]): string {
  return markdownTable(
    [
      'compress',
      'tabs',
      'steps',
      'bytes/step',
      'x fp32',
      'reported x fp32',
      'final acc',
      'points below fp32',
    ],
    rows.map((r) =>
      r.ok
        ? [
            r.spec === 'none' ? 'none (fp32)' : r.spec,
            String(r.tabs),
            String(r.steps),
            fmtBytes(Math.round(r.bytesPerStep)),
            r.vsNone === null ? '-' : `${r.vsNone.toFixed(3)}x`,
            r.reportedRatio === null ? '-' : `${r.reportedRatio.toFixed(3)}x`,
            r.finalAccuracy === null ? '-' : `${(100 * r.finalAccuracy).toFixed(2)}%`,
            fmt(opt(r.accuracyDropPoints), 2),
          ]
        : [r.spec, String(r.tabs), String(r.steps), '-', '-', '-', '-', `failed: ${r.error}`],
    ),
    [L, R, R, R, R, R, R, R],
  );
}

function checkLine(c: ScalingCheck): string {
  const mark = c.pass === null ? 'not measured' : c.pass ? 'yes' : 'NO';
  return `- ${c.what}: ${c.value} (${mark})`;
}

/** Part 6's section of the markdown report. */
export function renderScaling(p: ScalingPart): string[] {
  const s = p.settings;
  const out: string[] = [
    `## Scaling: 1-${Math.max(...s.tabs)} tabs at the same global batch (${s.globalBatch})`,
    '',
    `Global batch ${s.globalBatch} split over the tabs; backend wasm, seed ${s.seed}; each run stops at its target ` +
      '(or its step cap). Time to target: from the first step to the evaluation that reached it. ' +
      '"x 1 tab": against the same method on one tab; "x 1 tab sync": against one tab of sync all-reduce ' +
      '(plain training at this global batch). Compute util.: compute / (compute + communication), mean over workers. ' +
      `Overlap rows: ${p.overlapField ? `config field \`${p.overlapField}\`` : 'left out (the run config has no overlap field)'}.`,
  ];
  for (const model of [...new Set(p.rows.map((r) => r.model))]) {
    const rows = p.rows.filter((r) => r.model === model);
    const m = s.models.find((x) => x.model === model);
    out.push(
      '',
      `### ${model.toUpperCase()}, target ${fmtPercent(rows[0]?.target)}` +
        (m ? ` (evaluated every ${m.evalEvery} steps, at most ${m.maxSteps} steps)` : ''),
      '',
      scalingTable(rows),
    );
  }
  if (p.compression.length > 0) {
    const c = s.compression;
    out.push(
      '',
      `### Bytes on the wire per step against fp32${c ? ` (${c.model.toUpperCase()}, ${c.tabs} tabs, ${c.steps} steps, no target)` : ''}`,
      '',
      compressionTable(p.compression),
    );
  }
  if (p.checks.length > 0) out.push('', "### Issue 10's checks", '', ...p.checks.map(checkLine));
  return out;
}
