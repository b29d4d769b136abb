import { describe, expect, it } from 'vitest';
import { pipelineSettings } from './args.ts';
import { headline, recomputeCosts, zeroSkipping } from './pipeline-cases.ts';
import { key, okRow } from './pipeline.fixture.ts';
import type { PipelineSpanAnalysis } from './pipeline-spans.ts';
import {
  concurrencyLine,
  headlineLines,
  pipelineGridTable,
  recomputeTable,
  renderPipeline,
  stageTimeRows,
} from './pipeline-table.ts';
import { versus1f1b } from './pipeline-versus.ts';
import type { PipelinePart, PipelineRow } from './report.ts';

const spans: PipelineSpanAnalysis = {
  steps: [3, 4, 5],
  makespanMs: 1000,
  bubble: 0.6,
  imbalanceBubble: 0.41,
  meanConcurrency: 1.6,
  concurrency: [0.1, 0.3, 0.4, 0.2, 0],
  stages: [0, 1, 2, 3].map((stage) => ({
    stage,
    forwardMs: 50,
    backwardMs: stage === 0 ? 50 : 500,
    commMs: 300,
    idleMs: stage === 0 ? 900 : 450,
  })),
};

function part(): PipelinePart {
  const s = pipelineSettings(false);
  const rows: PipelineRow[] = [
    okRow(key(4, 'naive', 1), [900_000, 800_000, 700_000, 1_500_000], 600),
    okRow(key(4, 'gpipe', 8), [926_720, 800_000, 700_000, 1_500_000], 1000),
    okRow(key(4, '1f1b', 8), [463_360, 400_000, 260_000, 200_000], 1100, {
      spans,
      steadyStepMs: 1050,
      steadySamplesPerSec: 121.9,
      cpu: {
        wallMs: 3000,
        machineBusy: 0.99,
        chromiumMs: { browser: 0, renderer: 4000, network: 900, gpu: 100, other: 0 },
        chromiumCores: 1.67,
      },
    }),
    { ...key(3, 'gpipe', 16), ok: false, error: 'PhaseTimeoutError: step 2 | late' },
    okRow(key(4, '1f1b', 8, false, 12), [463_360, 400_000, 260_000, 200_000], 1000, { spans }),
    okRow(key(4, '1f1b', 8, true, 12), [266_240, 250_000, 150_000, 120_000], 1080),
    okRow(key(4, 'interleaved', 8, false, 6, 2), [300_000, 300_000, 300_000, 300_000], 900, {
      bubbleMeasured: 0.3,
      bytesBetweenStagesPerStep: 2_000_000,
    }),
  ];
  return {
    rows,
    recompute: recomputeCosts(rows, s),
    headline: headline(rows, 4, 8),
    versus: versus1f1b(rows),
    compression: null,
    traceFile: '20261122-000000-pipeline-1f1b-P4-M8.trace.json',
  };
}

describe('zeros sent against zeros skipped', () => {
  it('marks the zeros-sent run in the grid and compares it in its own table', () => {
    const base = part();
    const sent = okRow({ ...key(4, '1f1b', 8, false, 12), skipZeros: false }, [463_360, 0, 0, 0], 2000, {
      bytesBetweenStagesPerStep: 3_145_728,
      bubbleMeasured: 0.78,
    });
    const skipped = okRow(key(4, '1f1b', 8, false, 12), [463_360, 0, 0, 0], 1000, {
      bytesBetweenStagesPerStep: 943_718,
      bubbleMeasured: 0.69,
    });
    const rows = [...base.rows, sent, skipped];
    const md = renderPipeline({ ...base, rows, zeros: zeroSkipping(rows, pipelineSettings(false)) }).join(
      '\n',
    );
    expect(md).toMatch(/^\| +4 \| 1f1b, zeros sent +\| +8 \| no +\| +12 \| +0\.780 \|/m);
    expect(md).toContain('### Skipping zeros between stages');
    expect(md).toMatch(
      /^\| P=4 1f1b M=8 +\| +3 MiB \| +921\.6 KiB \| +0\.30x \| +2000 \| +1000 \| +-50% \| +0\.780 \| +0\.690 \|$/m,
    );
  });
});

describe('pipelineGridTable', () => {
  const md = pipelineGridTable(part().rows);
  const lines = md.split('\n');

  it('has one line per run under the header', () => {
    expect(lines).toHaveLength(2 + 7);
    expect(lines[0]).toMatch(/^\| +P \| schedule +\| +M \| recompute \| steps \| bubble \| theory \|/);
  });

  it('shows bubble against theory, steady throughput, peaks and CPU', () => {
    const row = lines[4] ?? '';
    const cells = row.split('|').map((c) => c.trim());
    // ['', P, schedule, M, recompute, steps, bubble, theory, diff, samples/s, step ms, bytes, peak 0,
    //  peak max, imbalance, at once, none computing, cores, busy, '']
    expect(cells.slice(1, 19)).toEqual([
      '4',
      '1f1b',
      '8',
      'no',
      '6',
      '0.323',
      '0.273',
      '+5.0 pp',
      '122',
      '1050',
      '-',
      '452.5 KiB',
      '452.5 KiB (0)',
      '0.410',
      '1.60',
      '10%',
      '1.67',
      '99%',
    ]);
  });

  it('falls back to the coordinator figures and dashes, and escapes a failure', () => {
    const naive = (lines[2] ?? '').split('|').map((c) => c.trim());
    expect(naive.slice(9, 11)).toEqual(['107', '600']);
    expect(naive.slice(14, 19)).toEqual(['-', '-', '-', '-', '-']);
    const interleaved = (lines[8] ?? '').split('|').map((c) => c.trim());
    // its own theory, (P-1)/(VM+P-1) = 3/19, and its bytes between stages
    expect(interleaved.slice(2, 3).concat(interleaved.slice(6, 9), interleaved.slice(11, 12))).toEqual([
      'interleaved V=2',
      '0.300',
      '0.158',
      '+14.2 pp',
      '1.9 MiB',
    ]);
    expect(
      (lines[5] ?? '')
        .split('|')
        .map((c) => c.trim())
        .slice(5, 8),
    ).toEqual(['6', 'failed', '-']);
    expect(renderPipeline(part())).toContain(
      '- P=3 gpipe M=16 (6 steps) failed: PhaseTimeoutError: step 2 | late',
    );
  });
});

describe('recomputeTable and headlineLines', () => {
  it('states the step time up and the stage-0 memory down', () => {
    const md = recomputeTable(part().recompute);
    expect(md.split('\n')).toHaveLength(3);
    expect(md).toContain('| P=4 1f1b M=8 |');
    expect(md).toMatch(/\| +1000 \| +1080 \| +\+8% \| +452\.5 KiB \| +260 KiB \| +-43% \|/);
  });

  it('gives each check a verdict', () => {
    const lines = headlineLines(part().headline);
    expect(lines).toEqual([
      '- 1F1B bubble at P=4, M=8: measured 0.323 vs theory 0.273 (+5.0 pp; target within 10 pp): met.',
      '- Stage-0 peak activations at P=4, M=8: 1F1B 452.5 KiB vs GPipe 905 KiB = 0.50x (target at most 0.50x): met.',
      "- With recomputation: 1F1B 260 KiB = 0.29x of GPipe's (lower still).",
    ]);
  });

  it('says so when a check fails or did not run', () => {
    const h = {
      ...part().headline,
      bubbleMeasured: 0.6,
      bubbleError: 0.327,
      peakRatio: 0.7,
      peakRatioRecompute: 0.8,
    };
    const lines = headlineLines(h);
    expect(lines[0]).toContain('+32.7 pp');
    expect(lines[0]).toMatch(/NOT met\.$/);
    expect(lines[1]).toMatch(/NOT met\.$/);
    expect(lines[2]).toContain('NOT lower than without');
    expect(
      headlineLines({
        ...h,
        bubbleMeasured: null,
        bubbleError: null,
        peakRatio: null,
        peakRatioRecompute: null,
      }),
    ).toEqual(['- 1F1B bubble at P=4, M=8: no successful run.']);
  });
});

describe('stage times', () => {
  it('picks naive, gpipe and 1f1b at the headline, each its longest run', () => {
    const rows = stageTimeRows(part());
    expect(rows.map((r) => [r.schedule, r.recompute, r.steps])).toEqual([
      ['naive', false, 6],
      ['gpipe', false, 6],
      ['1f1b', false, 12],
      ['1f1b', true, 12],
      ['interleaved', false, 6],
    ]);
    expect(concurrencyLine(rows[2]!)).toBe('0: 10% · 1: 30% · 2: 40% · 3: 20% · 4: 0%');
  });

  it('renders the whole section with the per-stage split of runs that have spans', () => {
    const md = renderPipeline(part()).join('\n');
    expect(md).toContain('## Pipeline parallelism');
    expect(md).toContain('### Cost of recomputation');
    expect(md).toContain('### Which schedules beat 1F1B in this run');
    expect(md).toContain(
      "- interleaved V=2 beat 1F1B's measured bubble in 1 of 1 (P, M): P=4 M=8; shorter step at P=4 M=8.",
    );
    expect(md).toContain(
      "- P=4 interleaved V=2 M=8: bubble 0.300 (theory 0.158) vs 1F1B's 0.323 in this run: below (met)",
    );
    expect(md).toContain('### Where the step goes at P=4');
    expect(md).not.toContain('### Skipping zeros between stages');
    // Only the 12-step 1f1b run has spans among the picked rows: 4 stage lines.
    expect(md.match(/^\| P=4 1f1b M=8 +\| [0-3] \(/gm)).toHaveLength(4);
    expect(md).toMatch(/\| 1 \(2-3\) +\| +50 \| +500 \| +10\.0 \| +300 \| +450 \| +45% \|/);
    expect(md).toContain('`20261122-000000-pipeline-1f1b-P4-M8.trace.json`');
  });
});
