import { describe, expect, it } from 'vitest';
import { settingsFor } from './args.ts';
import { headline } from './pipeline-cases.ts';
import { key, okRow } from './pipeline.fixture.ts';
import { versus1f1b } from './pipeline-versus.ts';
import { cpuSplit, renderMarkdown } from './report.ts';
import type { AllReduceRow, BenchReport, CpuUse, RawFigure } from './report.ts';

const cpu: CpuUse = {
  wallMs: 1000,
  machineBusy: 0.97,
  chromiumMs: { browser: 100, renderer: 700, network: 150, gpu: 50, other: 0 },
  chromiumCores: 1,
};

const rawFigure: RawFigure = {
  id: 'raw',
  label: 'raw Connection, 2 tabs, one way',
  links: 1,
  msgBytes: 262_144,
  bytesPerLink: 32 * 2 ** 20,
  perLinkMbps: 21.44,
  minLinkMbps: 21.44,
  aggregateMbps: 21.44,
  ms: 1565,
  wireOverhead: 1,
  cpu,
  cpuMsPerMb: 47.6,
};

const row: AllReduceRow = {
  n: 3,
  bucketElems: 262_144,
  maxInFlight: null,
  frameBytes: 65_536,
  sizeBytes: 8 * 2 ** 20,
  repsMs: [1886, 1900, 1850],
  medianMs: 1886,
  algbwMbps: 4.45,
  busbwMbps: 5.93,
  ratioRaw: 0.277,
  ratioRawRing: 1.27,
  aggregateMbps: 17.8,
  bytesSentPerWorker: 11_184_812,
  maxStartSkewMs: 2.5,
  cpu,
  cpuMsPerMb: 81,
  mismatches: 0,
};

function report(): BenchReport {
  return {
    name: '20261121-223417',
    machine: {
      cpus: 2,
      cpuModel: 'AMD EPYC',
      totalMemGiB: 24,
      loadAvgStart: [1.5, 1, 0.5],
      loadAvgEnd: [2, 1, 0.5],
      platform: 'linux x64',
      node: 'v20.20.2',
      chromium: '156.0.8078.79',
      date: '2026-11-21T22:34:17.291Z',
      commit: '38c514564e0123',
    },
    settings: settingsFor({ quick: false, parts: ['raw', 'allreduce', 'train'] }),
    clock: { offsetsMs: [0.1, -0.2], maxErrorMs: 0.4 },
    raw: { maxMessageSize: 262_144, figures: [rawFigure], ping: { medianMs: 0.84, p90Ms: 1.5, count: 45 } },
    allReduce: { rawMbps: 21.44, rows: [row], sweep: [row], inFlight: [], frames: [], memory: [] },
    train: [{ sync: 'ps', ok: false, error: 'SessionError: boom' }],
    pipeline: null,
    errors: ['train: something | odd'],
    durationMs: 140_000,
  };
}

describe('renderMarkdown', () => {
  const md = renderMarkdown(report());

  it('states the machine and the units', () => {
    expect(md).toContain('# PeerTrain benchmark 20261121-223417');
    expect(md).toContain('2 x AMD EPYC');
    expect(md).toContain('Chromium 156.0.8078.79');
    expect(md).toContain('commit 38c514564e\n');
    expect(md).toContain('MB/s (10^6 bytes/s)');
    expect(md).toContain('median 0.84 ms, p90 1.50 ms (45 samples)');
  });

  it('prints every figure row with its ratios and CPU split', () => {
    expect(md).toMatch(
      /\| raw Connection, 2 tabs, one way +\| +1 \| +256 KiB \| +32 MiB \| +21\.4 \(21\.4\) \|/,
    );
    expect(md).toContain('## Ring all-reduce (raw point-to-point: 21.4 MB/s)');
    const line = md.split('\n').find((l) => l.startsWith('|   3 |'));
    expect(
      line
        ?.split('|')
        .map((c) => c.trim())
        .filter((c) => c !== ''),
    ).toEqual([
      '3',
      '256K',
      'default',
      '64 KiB',
      '8 MiB',
      '1886',
      '4.5',
      '5.9',
      '0.28x',
      '1.27x',
      '17.8',
      '2.5',
      '1.00',
      '81',
      '70/15/10/5',
      'yes',
    ]);
    expect(md).toContain('### Bucket sweep');
    expect(md).not.toContain('### Buckets in flight');
  });

  it('shows failed parts and errors instead of figures', () => {
    expect(md).toContain('failed: SessionError: boom');
    expect(md).toContain('- train: something | odd');
    expect(md).toContain('Run took 140 s.');
  });

  it('leaves out parts that did not run', () => {
    const r = report();
    r.raw = null;
    r.train = null;
    const text = renderMarkdown(r);
    expect(text).not.toContain('## Data channel throughput');
    expect(text).not.toContain('## Training step split');
    expect(text).not.toContain('## Pipeline parallelism');
    expect(text).not.toContain('## Dashboard rendering');
  });

  it('renders the dashboard part: the timeline zoom and one row per chart size', () => {
    const r = report();
    const frames = { frames: 90, medianMs: 16.7, p90Ms: 18.2, p99Ms: 33.4, maxMs: 41, over50: 0 };
    r.dashboard = {
      timeline: { ...frames, stages: 16, microBatches: 32, steps: 8, spans: 23_680 },
      charts: [
        { ...frames, points: 100_000, merged: true, drawn: 782, updates: 15 },
        { ...frames, points: 100_000, merged: false, drawn: 100_015, updates: 15, maxMs: 120.5, over50: 3 },
      ],
      chartMs: 6000,
    };
    const text = renderMarkdown(r);
    expect(text).toContain('## Dashboard rendering');
    expect(text).toContain('Timeline: 23,680 spans (16 stages x 32 micro-batches x 8 steps)');
    expect(text).toContain('for 6 s;');
    const cells = (prefix: string): string[] | undefined =>
      text
        .split('\n')
        .find((l) => l.startsWith(`| ${prefix}`))
        ?.split('|')
        .map((c) => c.trim())
        .filter((c) => c !== '');
    // frames, median, p90, p99 (the same in every row here), then max and the long frames.
    const common = ['90', '16.7', '18.2', '33.4'];
    expect(cells('timeline zoom')).toEqual(['timeline zoom', '8', '-', ...common, '41.0', '0']);
    expect(cells('charts, 15')).toEqual(['charts, 15 live steps', '100,000', '782', ...common, '41.0', '0']);
    expect(cells('charts, one')).toEqual([
      'charts, one point a step, 15 live steps',
      '100,000',
      '100,015',
      ...common,
      '120.5',
      '3',
    ]);
  });

  it('adds the pipeline section after the other parts', () => {
    const r = report();
    const rows = [okRow(key(4, 'gpipe', 8), [900_000], 1000), okRow(key(4, '1f1b', 8), [450_000], 1100)];
    r.pipeline = {
      rows,
      recompute: [],
      headline: headline(rows, 4, 8),
      versus: versus1f1b(rows),
      compression: null,
      traceFile: null,
    };
    const text = renderMarkdown(r);
    expect(text.indexOf('## Pipeline parallelism')).toBeGreaterThan(text.indexOf('## Training step split'));
    expect(text).toContain('1F1B bubble at P=4, M=8: measured 0.323 vs theory 0.273');
    expect(text).toContain('= 0.50x (target at most 0.50x): met.');
  });
});

describe('cpuSplit', () => {
  it('gives renderer/network/browser/gpu+other percentages', () => {
    expect(cpuSplit(cpu)).toBe('70/15/10/5');
    expect(cpuSplit({ ...cpu, chromiumMs: { browser: 0, renderer: 0, network: 0, gpu: 0, other: 0 } })).toBe(
      '-',
    );
  });
});
