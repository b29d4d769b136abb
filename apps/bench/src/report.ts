import type { ScheduleKind } from '@peertrain/protocol';
import type { Headline, PipelineCase, RecomputeCost, ScheduleSpec, ZeroSkipping } from './pipeline-cases.ts';
import type { CompressPairSettings, CompressPart } from './pipeline-compress.ts';
import type { VersusEntry } from './pipeline-versus.ts';
import type { PipelineSpanAnalysis } from './pipeline-spans.ts';
import { renderPipeline } from './pipeline-table.ts';
import type { ScalingSettings } from './scaling-cases.ts';
import type { ScalingPart } from './scaling-figures.ts';
import { renderScaling } from './scaling-table.ts';
import { renderGpu } from './gpu.ts';
import type { GpuPart } from './gpu-types.ts';
import { renderElastic } from './elastic.ts';
import type { ElasticPart, ElasticSettings } from './elastic.ts';
import { renderLinks } from './links.ts';
import type { LinksPart, LinksSettings } from './links.ts';
import { renderThreads } from './threads.ts';
import type { ThreadsPart, ThreadsSettings } from './threads.ts';
import type { RoleMs } from './procfs.ts';
import { fmt, fmtBytes, fmtElems, fmtPercent, fmtRatio, markdownTable } from './table.ts';

// The benchmark's JSON report (bench/results/<name>.json) and its markdown rendering.
// Rates are MB/s with 1 MB = 10^6 bytes; times are milliseconds.

export type Part =
  | 'raw'
  | 'allreduce'
  | 'train'
  | 'pipeline'
  | 'dashboard'
  | 'scaling'
  | 'gpu'
  | 'elastic'
  | 'links'
  | 'threads';
export const PARTS: readonly Part[] = [
  'raw',
  'allreduce',
  'train',
  'pipeline',
  'dashboard',
  'scaling',
  'gpu',
  'elastic',
  'links',
  'threads',
];
/**
 * What a run without --only measures: scaling (about 20 minutes), elastic (21 sessions), links
 * (six sessions, three of them over impaired links) and threads (four rooms) run only when named.
 */
export const DEFAULT_PARTS: readonly Part[] = ['raw', 'allreduce', 'train', 'pipeline', 'dashboard', 'gpu'];

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemGiB: number;
  /** os.loadavg() when the run started: other work on a shared machine skews every figure. */
  loadAvgStart: number[];
  loadAvgEnd: number[];
  platform: string;
  node: string;
  chromium: string;
  date: string;
  commit: string | null;
}

export interface BenchSettings {
  quick: boolean;
  parts: Part[];
  /**
   * Hosted rooms (pipeline, scaling) in one browser profile: tabs link through the browser (tab
   * links) instead of WebRTC (absent: a profile per tab).
   */
  oneProfile?: boolean;
  /** Bytes per link of the raw tests. */
  rawBytes: number;
  /** S: bytes all-reduced (float32). */
  allReduceBytes: number;
  warmup: number;
  reps: number;
  ns: number[];
  /** Bucket of the N = 2, 3, 4 rows. */
  bucketElems: number;
  /** Buckets of the N = 3 sweep. */
  sweepBuckets: number[];
  trainSteps: number;
  pipeline: PipelineSettings;
  /** Part 5: steps in the charts, one figure each, and how long each records frames. */
  dashboard: { chartPoints: number[]; chartMs: number };
  /** Part 6: tabs, models, methods of the scaling table. */
  scaling: ScalingSettings;
  /** Part 7: seeded kills in elastic runs (absent in reports written before the part existed). */
  elastic?: ElasticSettings;
  /** Part 7 too: the same kills in elastic DiLoCo runs (absent in older reports). */
  elasticDiloco?: ElasticSettings;
  /** Part 8: the runs made unimpaired and over an impaired link (absent in older reports). */
  links?: LinksSettings;
  /** Part 9: the runs made with the tabs computing on the page and in a thread (absent in older reports). */
  threads?: ThreadsSettings;
}

/** Part 4: pipeline runs of wideMlp on synthetic data, one per (P, schedule, M). */
export interface PipelineSettings {
  /** P values (stages = worker tabs). */
  stages: number[];
  /** M values for every schedule but naive (it always runs M = 1). */
  microBatches: number[];
  /** The schedules run at every (P, M) besides naive: gpipe, 1f1b, interleaved V = 2, zb-h1. */
  schedules: ScheduleSpec[];
  /** The CNN's fp32-vs-fp16 activations pair, run after the grid; null: not run. */
  compress: CompressPairSettings | null;
  /** Steps per run; the coordinator's measured bubble is the median after its 3 warm-up steps. */
  steps: number;
  /** Steps of the recompute pairs (run apart from the grid, back to back). */
  recomputeSteps: number;
  /** Batch per step, split into M micro-batches. */
  batch: number;
  /** Steps the span analysis leaves out (the coordinator's warm-up). */
  warmupSteps: number;
  /** Runs made twice after the grid, without and with recomputation, at recomputeSteps. */
  recompute: { stages: number; schedule: ScheduleKind; microBatches: number }[];
  /** Where the brief's checks are made (1F1B bubble vs theory, stage-0 memory vs GPipe). */
  headline: { stages: number; microBatches: number };
}

/** CPU use around one measured operation. */
export interface CpuUse {
  wallMs: number;
  /** Fraction of the machine's cores busy (every process, other people's work included). */
  machineBusy: number;
  /** CPU ms of Chromium's processes, by role (renderer = the tabs; network = the network service). */
  chromiumMs: RoleMs;
  /** Chromium CPU ms per ms of transfer time: how many cores the browser kept busy. */
  chromiumCores: number;
}

/** One raw transfer test: `links` senders stream at once, each `bytesPerLink`. */
export interface RawFigure {
  id: string;
  label: string;
  links: number;
  /** Bytes per send (Connection.send) or per Mesh frame. */
  msgBytes: number;
  bytesPerLink: number;
  /** Median over links of bytes / (receiver has everything - sender started). */
  perLinkMbps: number;
  minLinkMbps: number;
  /** All bytes / (last receiver done - first sender started). */
  aggregateMbps: number;
  ms: number;
  /** Bytes on the wire per payload byte (Mesh frame headers; 1 for raw sends). */
  wireOverhead: number;
  cpu: CpuUse;
  /** Chromium CPU ms per MB of payload (all links together). */
  cpuMsPerMb: number;
}

export interface AllReduceRow {
  n: number;
  bucketElems: number;
  maxInFlight: number | null;
  /** Mesh frame size. */
  frameBytes: number;
  sizeBytes: number;
  /** Group time of each measured repetition: last tab done - first tab started. */
  repsMs: number[];
  medianMs: number;
  /** S / t */
  algbwMbps: number;
  /** S * 2(n-1)/n / t */
  busbwMbps: number;
  /** busbw / raw point-to-point rate. */
  ratioRaw: number;
  /** busbw / per-link rate of n tabs streaming raw in a ring at once (same contention). */
  ratioRawRing: number | null;
  /** n * busbw: what the whole machine moves. */
  aggregateMbps: number;
  /** Payload bytes one worker sent (median over tabs), from AllReduceStats. */
  bytesSentPerWorker: number;
  /** Latest start minus earliest start of the tabs (scheduling skew, inside the time). */
  maxStartSkewMs: number;
  /** Over the measured repetitions. */
  cpu: CpuUse;
  /** Chromium CPU ms per MB sent by all workers together. */
  cpuMsPerMb: number;
  mismatches: number;
}

export interface MemoryRow {
  n: number;
  bucketElems: number;
  ms: number;
  /** busbw of each in-page rank: S * 2(n-1)/n / t, all n ranks on one thread. */
  busbwMbps: number;
  mismatches: number;
}

export type TrainFigure =
  | {
      sync: 'allreduce' | 'ps';
      ok: true;
      workers: number;
      steps: number;
      batch: number;
      backend: string;
      stepMsMedian: number;
      computeMsMedian: number;
      commMsMedian: number;
      samplesPerSec: number;
      bytesSent: number;
      finalLoss: number;
      testAccuracy: number;
      wallMs: number;
      /** Backends the workers actually used. */
      workerBackends: string[];
    }
  | { sync: 'allreduce' | 'ps'; ok: false; error: string };

/** Per stage of a pipeline run, from its RunReport (layers inclusive). */
export interface PipelineStageFigure {
  layers: [number, number];
  parameterBytes: number;
  peakActivationBytes: number;
  peakActivationBytesNoRecompute: number;
}

export type PipelineRow = PipelineCase &
  (
    | {
        ok: true;
        partition: string;
        batch: number;
        /** The coordinator's: median over steps after its warm-up. */
        bubbleMeasured: number;
        /** The schedule's own bound, from the report (packages/schedules' bubbleTheory). */
        bubbleTheory: number;
        /** Bytes the stages sent each other per step (the report's); null when it does not say. */
        bytesBetweenStagesPerStep: number | null;
        /** The coordinator's: over every step, warm-up included. */
        samplesPerSec: number;
        /** The coordinator's: median time between step completions, warm-up included. */
        stepMsMedian: number;
        /** Mean step time over the measured steps (after the warm-up), from the progress events. */
        steadyStepMs: number | null;
        steadySamplesPerSec: number | null;
        /** The run from waiting for workers to the report (profiling and evaluation included). */
        wallMs: number;
        perStage: PipelineStageFigure[];
        /** Backends the stages actually used. */
        backends: string[];
        /** From the run's trace: where the step time goes. */
        spans: PipelineSpanAnalysis | null;
        /** Machine and Chromium CPU over the measured steps (after the warm-up). */
        cpu: CpuUse | null;
      }
    | { ok: false; error: string }
  );

export interface PipelinePart {
  rows: PipelineRow[];
  recompute: RecomputeCost[];
  /** The recompute cases with every zero sent against zeros skipped (absent in older reports). */
  zeros?: ZeroSkipping[];
  headline: Headline;
  /** Every other schedule against 1F1B at the same (P, M), from these rows. */
  versus: VersusEntry[];
  /** The CNN's compressed-activations pair; null when not run. */
  compression: CompressPart | null;
  /** File (beside the report) holding the Chrome trace of the headline 1F1B run, if written. */
  traceFile: string | null;
}

/** Frame intervals (ms) in a page: requestAnimationFrame to requestAnimationFrame. */
export interface FrameStats {
  frames: number;
  medianMs: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Frames longer than 50 ms (a long task). */
  over50: number;
}

/** Charts holding `points` steps while the page takes a new step every 400 ms. */
export interface ChartFigure extends FrameStats {
  /** Steps each chart holds. */
  points: number;
  /** Whether the charts merged steps past MAX_CHART_POINTS (as the dashboard does) or drew each. */
  merged: boolean;
  /** Points the loss line drew at the end. */
  drawn: number;
  /** Steps the loss chart took while frames were recorded. */
  updates: number;
}

/** Part 5: the dashboard's views under load (the built gallery page, synthetic runs). */
export interface DashboardPart {
  /** Zooming the timeline in and out, one wheel event a frame. */
  timeline: FrameStats & { stages: number; microBatches: number; steps: number; spans: number };
  charts: ChartFigure[];
  /** How long each chart figure recorded frames. */
  chartMs: number;
}

export interface BenchReport {
  name: string;
  machine: MachineInfo;
  settings: BenchSettings;
  /** Estimated page clock minus driver clock, per tab, and its error bound. */
  clock: { offsetsMs: number[]; maxErrorMs: number } | null;
  raw: {
    maxMessageSize: number;
    figures: RawFigure[];
    /** Round trip of a 4-byte tensor through the Mesh between two tabs (latency of one ring round). */
    ping: { medianMs: number; p90Ms: number; count: number } | null;
  } | null;
  allReduce: {
    /** The point-to-point rate every busbw is compared with (figure "raw"). */
    rawMbps: number;
    rows: AllReduceRow[];
    sweep: AllReduceRow[];
    inFlight: AllReduceRow[];
    frames: AllReduceRow[];
    memory: MemoryRow[];
  } | null;
  train: TrainFigure[] | null;
  pipeline: PipelinePart | null;
  /** Absent in reports written before the part existed. */
  dashboard?: DashboardPart | null;
  /** Absent in reports written before the part existed. */
  scaling?: ScalingPart | null;
  /** The GPU part (gpu.ts); absent or null when not asked for. */
  gpu?: GpuPart | null;
  /** Absent in reports written before the part existed. */
  elastic?: ElasticPart | null;
  /** Absent in reports written before the part existed. */
  elasticDiloco?: ElasticPart | null;
  /** Absent in reports written before the part existed. */
  links?: LinksPart | null;
  /** Absent in reports written before the part existed. */
  threads?: ThreadsPart | null;
  errors: string[];
  durationMs: number;
}

const R = 'right' as const;
const L = 'left' as const;

/** "renderer/network/browser/gpu" shares of Chromium's CPU time, e.g. "71/22/6/1". */
export function cpuSplit(cpu: CpuUse): string {
  const r = cpu.chromiumMs;
  const total = r.browser + r.renderer + r.network + r.gpu + r.other;
  if (!(total > 0)) return '-';
  const pct = (x: number): string => String(Math.round((100 * x) / total));
  return [r.renderer, r.network, r.browser, r.gpu + r.other].map(pct).join('/');
}

function rawTable(figures: readonly RawFigure[]): string {
  return markdownTable(
    [
      'test',
      'links',
      'msg',
      'per link',
      'MB/s per link (min)',
      'MB/s aggregate',
      'wire/payload',
      'Chromium cores',
      'CPU ms/MB',
      'CPU % r/n/b/g',
      'machine busy',
    ],
    figures.map((f) => [
      f.label,
      String(f.links),
      fmtBytes(f.msgBytes),
      fmtBytes(f.bytesPerLink),
      `${fmt(f.perLinkMbps)} (${fmt(f.minLinkMbps)})`,
      fmt(f.aggregateMbps),
      fmt(f.wireOverhead, 3),
      fmt(f.cpu.chromiumCores, 2),
      fmt(f.cpuMsPerMb, 0),
      cpuSplit(f.cpu),
      fmtPercent(f.cpu.machineBusy),
    ]),
    [L, R, R, R, R, R, R, R, R, R, R],
  );
}

function allReduceTable(rows: readonly AllReduceRow[]): string {
  return markdownTable(
    [
      'N',
      'bucket',
      'in flight',
      'frame',
      'S',
      'median ms',
      'algbw',
      'busbw',
      'busbw/raw',
      'busbw/raw ring',
      'N x busbw',
      'skew ms',
      'Chromium cores',
      'CPU ms/MB',
      'CPU % r/n/b/g',
      'ok',
    ],
    rows.map((r) => [
      String(r.n),
      fmtElems(r.bucketElems),
      r.maxInFlight === null ? 'default' : String(r.maxInFlight),
      fmtBytes(r.frameBytes),
      fmtBytes(r.sizeBytes),
      fmt(r.medianMs, 0),
      fmt(r.algbwMbps),
      fmt(r.busbwMbps),
      fmtRatio(r.ratioRaw),
      fmtRatio(r.ratioRawRing ?? undefined),
      fmt(r.aggregateMbps),
      fmt(r.maxStartSkewMs, 1),
      fmt(r.cpu.chromiumCores, 2),
      fmt(r.cpuMsPerMb, 0),
      cpuSplit(r.cpu),
      r.mismatches === 0 ? 'yes' : `${r.mismatches} wrong`,
    ]),
    [R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, L],
  );
}

const frameCells = (f: FrameStats): string[] => [
  String(f.frames),
  fmt(f.medianMs, 1),
  fmt(f.p90Ms, 1),
  fmt(f.p99Ms, 1),
  fmt(f.maxMs, 1),
  String(f.over50),
];
const FRAME_HEADERS = ['frames', 'median ms', 'p90 ms', 'p99 ms', 'max ms', '> 50 ms'];

export function renderDashboard(d: DashboardPart): string[] {
  const t = d.timeline;
  return [
    '## Dashboard rendering (built gallery page, synthetic runs)',
    '',
    `Frame intervals in the page (60 fps is 16.7 ms). Timeline: ${t.spans.toLocaleString('en-US')} spans ` +
      `(${t.stages} stages x ${t.microBatches} micro-batches x ${t.steps} steps), zoomed in and out by one wheel event a frame. ` +
      `Charts: every chart holds the given number of steps and the page takes a new step every 400 ms, for ${fmt(d.chartMs / 1000, 0)} s; ` +
      'the dashboard merges steps past 1,024 points per line, "one point a step" draws each (for comparison).',
    '',
    markdownTable(
      ['view', 'steps', 'points drawn', ...FRAME_HEADERS],
      [
        ['timeline zoom', String(t.steps), '-', ...frameCells(t)],
        ...d.charts.map((c) => [
          `charts${c.merged ? '' : ', one point a step'}, ${c.updates} live steps`,
          c.points.toLocaleString('en-US'),
          c.drawn.toLocaleString('en-US'),
          ...frameCells(c),
        ]),
      ],
      [L, R, R, R, R, R, R, R, R],
    ),
  ];
}

function trainTable(figures: readonly TrainFigure[]): string {
  return markdownTable(
    [
      'sync',
      'workers',
      'steps',
      'batch',
      'backend',
      'step ms',
      'compute ms',
      'comm ms',
      'samples/s',
      'bytes sent',
      'final loss',
      'test acc',
    ],
    figures.map((f) =>
      f.ok
        ? [
            f.sync,
            String(f.workers),
            String(f.steps),
            String(f.batch),
            f.workerBackends.join(',') || f.backend,
            fmt(f.stepMsMedian),
            fmt(f.computeMsMedian),
            fmt(f.commMsMedian),
            fmt(f.samplesPerSec, 0),
            fmtBytes(f.bytesSent),
            fmt(f.finalLoss, 3),
            fmtPercent(f.testAccuracy),
          ]
        : [f.sync, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `failed: ${f.error}`],
    ),
    [L, R, R, R, L, R, R, R, R, R, R, L],
  );
}

/** The markdown report: machine, then one section per part that ran. */
export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const out: string[] = [
    `# PeerTrain benchmark ${r.name}${r.settings.quick ? ' (quick)' : ''}`,
    '',
    `${m.date} · ${m.cpus} x ${m.cpuModel} · ${fmt(m.totalMemGiB, 0)} GiB · load ${m.loadAvgStart.map((x) => fmt(x, 2)).join(' ')} · ` +
      `Node ${m.node} · Chromium ${m.chromium} · ${m.platform}${m.commit ? ` · commit ${m.commit.slice(0, 10)}` : ''}`,
    '',
    'Rates in MB/s (10^6 bytes/s). Shared machine: compare figures within this run only.',
    ...(r.settings.oneProfile === true
      ? [
          '',
          "One browser profile (--one-profile): the pipeline and scaling rooms' tabs link through the browser (tab links, MessagePorts), not WebRTC.",
        ]
      : []),
  ];
  if (r.raw) {
    out.push(
      '',
      `## Data channel throughput (maxMessageSize ${r.raw.maxMessageSize} B)`,
      '',
      rawTable(r.raw.figures),
    );
    const p = r.raw.ping;
    if (p) {
      out.push(
        '',
        `Mesh round trip of a 4-byte tensor, 2 tabs: median ${fmt(p.medianMs, 2)} ms, p90 ${fmt(p.p90Ms, 2)} ms (${p.count} samples).`,
      );
    }
  }
  const ar = r.allReduce;
  if (ar) {
    out.push('', `## Ring all-reduce (raw point-to-point: ${fmt(ar.rawMbps)} MB/s)`, '');
    if (ar.rows.length > 0) out.push(allReduceTable(ar.rows), '');
    if (ar.sweep.length > 0) out.push('### Bucket sweep', '', allReduceTable(ar.sweep), '');
    if (ar.inFlight.length > 0) out.push('### Buckets in flight', '', allReduceTable(ar.inFlight), '');
    if (ar.frames.length > 0) out.push('### Mesh frame size', '', allReduceTable(ar.frames), '');
    if (ar.memory.length > 0) {
      out.push(
        '### Same all-reduce over the in-page memory transport (CPU cost, no WebRTC; all ranks on one thread)',
        '',
        markdownTable(
          ['N', 'bucket', 'ms', 'busbw per rank', 'ok'],
          ar.memory.map((x) => [
            String(x.n),
            fmtElems(x.bucketElems),
            fmt(x.ms, 0),
            fmt(x.busbwMbps),
            x.mismatches === 0 ? 'yes' : `${x.mismatches} wrong`,
          ]),
          [R, R, R, R, L],
        ),
        '',
      );
    }
  }
  if (r.train) out.push('', '## Training step split (MNIST MLP)', '', trainTable(r.train));
  if (r.pipeline) out.push('', ...renderPipeline(r.pipeline));
  if (r.dashboard) out.push('', ...renderDashboard(r.dashboard));
  if (r.scaling) out.push('', ...renderScaling(r.scaling));
  if (r.gpu) out.push('', ...renderGpu(r.gpu));
  if (r.elastic) out.push('', ...renderElastic(r.elastic));
  if (r.elasticDiloco) out.push('', ...renderElastic(r.elasticDiloco));
  if (r.links) out.push('', ...renderLinks(r.links));
  if (r.threads) out.push('', ...renderThreads(r.threads));
  if (r.errors.length > 0) out.push('', '## Errors', '', ...r.errors.map((e) => `- ${e}`));
  out.push('', `Run took ${fmt(r.durationMs / 1000, 0)} s.`, '');
  return out.join('\n');
}
