import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ChromeTrace, RunReport, TargetReport } from '@peertrain/protocol';
import type { LinkCounts, RunConfig, WireError } from '@peertrain/protocol';
import { activationFormat, linkCountsText } from '@peertrain/protocol';
import type { ChaosEventRecord } from '@peertrain/harness';
import { formatDuration } from './progress.ts';

/** What the runner adds to the dashboard's RunReport. */
export interface HarnessFields {
  /** Wall time measured by the CLI around the whole session (build check, servers, browser, run). */
  wallMs: number;
  /** Chromium version as the browser reports it. */
  chromium: string;
  /** True when the session ran inside a private network namespace. */
  isolated: boolean;
  room: string;
  node: string;
  startedAt: string;
  faults: string[];
  /** The --link impairment applied to the peers' UDP, e.g. "rate=20mbit,loss=2%,delay=40ms". */
  link?: string;
  /** Cores of this machine (os.availableParallelism): every tab of the session shares them. */
  cores?: number;
  /** --chaos: the spec (canonical text) and each action as it was carried out. */
  chaos?: { spec: string; actions: ChaosEventRecord[] };
}

export type CliReport = RunReport & { harness: HarnessFields };

/** Steps and evaluations of a session, as its progress events reported them. */
export interface PartialRun {
  loss: { step: number; loss: number }[];
  evals: { step: number; accuracy: number }[];
}

/** The report of a session that failed part-way: what it computed before the error. */
export type PartialReport = PartialRun & {
  failed: true;
  error: WireError;
  config: RunConfig;
  harness: HarnessFields;
};

export async function writeReport(path: string, report: CliReport | PartialReport): Promise<string> {
  const file = resolve(path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** Writes a Chrome trace (opens in Perfetto); returns the absolute path. */
export async function writeTrace(path: string, trace: ChromeTrace): Promise<string> {
  const file = resolve(path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(trace));
  return file;
}

function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function percent(x: number): string {
  return Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a';
}

/** "target          92.00% reached at step 120 in 4.2 s (11520 samples, 12.3 MB)" or "... not reached". */
function targetLine(t: TargetReport): string {
  const head = `  target          ${(t.accuracy * 100).toFixed(2)}%`;
  if (!t.reached || t.step === null) return `${head} not reached`;
  const ms = t.timeToTargetMs ?? NaN;
  return (
    `${head} reached at step ${t.step} in ${ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms)}` +
    ` (${t.samplesToTarget ?? 0} samples, ${bytes(t.bytesToTarget ?? 0)})`
  );
}

/**
 * A synchronous data-parallel run whose steps were mostly communication (the README's first command
 * on this machine: 3 tabs of fp32 all-reduce, 61 of a 70 ms step) points at the method that sends
 * far less, the way a new user would not find it from the summary alone.
 */
function commBoundHint(report: CliReport): string[] {
  const c = report.config;
  const { commMsMedian: comm, computeMsMedian: compute } = report;
  const sync = c.strategy === 'data' && (c.sync === 'allreduce' || c.sync === 'ps');
  if (!sync || c.workers < 2 || !(comm > compute)) return [];
  return [
    `  hint            communication was ${percent(comm / (comm + compute))} of a step; local steps send far less:` +
      ` --sync diloco --inner-steps 10 --outer-lr 1 --outer-momentum 0 --compress int8` +
      ` (README "Fewer bytes per sample")`,
  ];
}

/**
 * A pipeline whose stage tabs outnumber this machine's cores cannot reach its schedule's theory,
 * which gives each stage a core: the stages take turns on the cores, and the measured bubble says
 * as much about the machine as about the schedule (4 stages on 2 cores here: 0.70 against 0.27).
 */
function coresHint(report: CliReport): string[] {
  const { pipeline: pl, harness: h } = report;
  if (!pl || h.cores === undefined) return [];
  const stageTabs = pl.stages * pl.replicas;
  if (stageTabs <= h.cores) return [];
  return [
    `                  (${stageTabs} stage tabs shared this machine's ${h.cores} cores: the theory gives each a core;` +
      ' README "Pipeline schedules, measured")',
  ];
}

/** The final summary printed on stdout. */
export function formatSummary(report: CliReport, reportPath: string): string {
  const c = report.config;
  const h = report.harness;
  const lines = [
    `peertrain: done in ${h.wallMs < 60_000 ? `${(h.wallMs / 1000).toFixed(1)} s` : formatDuration(h.wallMs)} (${c.workers} workers, ` +
      `${c.strategy === 'data' ? `data/${c.sync}` : `${c.strategy} ${c.schedule}${c.virtualStages > 1 ? ` V=${c.virtualStages}` : ''} M=${c.microBatches}${c.recompute ? ' recompute' : ''}${c.strategy === 'hybrid' ? ` R=${c.replicas}` : ''}`}, ` +
      `${c.model} on ${c.dataset}, ${c.steps} steps, batch ${c.batch}/${c.strategy === 'data' ? 'worker' : 'pipeline'}${h.isolated ? ', isolated network' : ''})`,
    `  final loss      ${report.finalLoss.toFixed(4)}`,
    `  test accuracy   ${(report.testAccuracy * 100).toFixed(2)}%`,
    ...(report.target ? [targetLine(report.target)] : []),
    `  throughput      ${Math.round(report.samplesPerSec)} samples/s (step median ${report.stepMsMedian.toFixed(1)} ms: ` +
      `compute ${report.computeMsMedian.toFixed(1)} ms, comm ${report.commMsMedian.toFixed(1)} ms)`,
    `  bytes sent      ${bytes(report.bytesSent)}` +
      (report.bytesPerSample !== undefined && Number.isFinite(report.bytesPerSample)
        ? ` (${bytes(Math.round(report.bytesPerSample))}/sample)`
        : ''),
    ...(report.computeUtilization !== undefined
      ? [`  compute share   ${percent(report.computeUtilization)} of step time (mean over workers)`]
      : []),
    ...commBoundHint(report),
  ];
  for (const w of report.workers) {
    lines.push(
      `  worker ${w.rank}        ${w.role}, ${w.backend}${w.computeThread ? ' (own thread)' : ''} ` +
        `${w.gflops.toFixed(1)} GFLOP/s, sent ${bytes(w.bytesSent)}` +
        (w.computeUtilization !== undefined ? `, compute ${percent(w.computeUtilization)}` : '') +
        (w.extraSamples !== undefined ? `, ${w.extraSamples} samples in fill steps` : '') +
        linksText(w.links) +
        (w.framesRefused > 0 ? `, ${w.framesRefused} frames refused` : ''),
    );
  }
  if (report.staleness) {
    lines.push(
      `  staleness       mean ${report.staleness.mean.toFixed(2)}, max ${report.staleness.max} versions`,
    );
  }
  if (report.compression) {
    const ratio = report.compression.bytesRatio;
    lines.push(
      `  compression     ${report.compression.spec}` +
        (ratio !== undefined ? `, ${ratio.toFixed(3)}x the fp32 bytes` : ''),
    );
  }
  if (report.reference) {
    const r = report.reference;
    lines.push(
      `  reference       max |diff| ${r.maxAbsDiff.toExponential(2)} (relative ${r.maxRelDiff.toExponential(2)}), ` +
        `reference loss ${r.referenceLoss.toFixed(4)}`,
    );
  }
  if (report.pipeline) {
    const pl = report.pipeline;
    lines.push(
      `  bubble          measured ${(pl.bubbleMeasured * 100).toFixed(1)}%, theory (${pl.schedule}) ${(pl.bubbleTheory * 100).toFixed(1)}%`,
      ...coresHint(report),
    );
    if (pl.bytesBetweenStagesPerStep !== undefined)
      lines.push(`  between stages  ${bytes(pl.bytesBetweenStagesPerStep)} a step (${activationFormat(pl)})`);
    for (const st of pl.perStage) {
      lines.push(
        `  stage ${st.stage}         layers ${(st.chunks ?? [st.layers]).map(([a, b]) => `${a}-${b}`).join(',')} (${st.layerNames.join(' ')}), params ${bytes(st.parameterBytes)}, ` +
          `peak activations ${bytes(st.peakActivationBytes)}` +
          (pl.recompute ? ` (${bytes(st.peakActivationBytesNoRecompute)} without recompute)` : ''),
      );
    }
  }
  if (report.errors.length > 0) {
    lines.push(`  errors          ${report.errors.map((e) => `${e.name}: ${e.message}`).join('; ')}`);
  }
  lines.push(`  report          ${reportPath}`, `  chromium        ${h.chromium}`);
  if (h.link !== undefined) lines.push(`  link            ${h.link}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the trained model as TensorFlow.js Layers files (DIR/model.json, DIR/weights.bin).
 * The engine (and tfjs) loads only here, when asked.
 */
export async function writeModel(
  dir: string,
  model: RunConfig['model'],
  paramsBase64: string,
): Promise<string> {
  const { buildModel, exportFiles, modelPreset } = await import('@peertrain/engine');
  const bytes = Buffer.from(paramsBase64, 'base64');
  const params = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const files = exportFiles(buildModel(modelPreset(model)), params);
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  await writeFile(resolve(out, 'model.json'), files['model.json']);
  await writeFile(resolve(out, 'weights.bin'), files['weights.bin']);
  return resolve(out, 'model.json');
}

/** ", links 2 tab + 1 WebRTC": how a worker reached its peers ('' when it did not say). */
function linksText(links: LinkCounts | undefined): string {
  const text = linkCountsText(links);
  return text ? `, links ${text}` : '';
}
