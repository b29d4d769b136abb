import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import {
  REPO_ROOT,
  ensureBuilt,
  launchBrowser,
  startSignalServer,
  startStaticServer,
} from '@peertrain/harness';
import type { SignalServer, StaticServer } from '@peertrain/harness';
import type {
  AllReduceRow,
  BenchReport,
  BenchSettings,
  MachineInfo,
  MemoryRow,
  RawFigure,
} from './report.ts';
import { CpuMeter, TRANSPORTS, measureAllReduce, measureMemoryAllReduce, measureRaw } from './measure.ts';
import type { AllReduceCase } from './measure.ts';
import type { BrowserArgs } from './args.ts';
import { findProcessByArg } from './procfs.ts';
import { BenchTabs } from './tabs.ts';
import { measureTraining } from './train.ts';
import { measurePipeline } from './pipeline.ts';
import { caseLabel } from './pipeline-cases.ts';
import { variantLabel } from './pipeline-compress.ts';
import { measureDashboard } from './dashboard.ts';
import { measureScaling } from './scaling.ts';
import { measureGpu } from './gpu.ts';
import { elasticErrors, measureElastic } from './elastic.ts';
import { linksErrors, measureLinks } from './links.ts';
import { measureThreads, threadsErrors } from './threads.ts';
import { runKind } from './results.ts';
import type { ChromeTrace } from '@peertrain/protocol';

// The whole benchmark in one process (already inside the network namespace): build, servers,
// Chromium, the bench tabs for parts 1 and 2, runSession for part 3, a hosted coordinator and
// worker tabs for part 4. A failing part is recorded in report.errors and the others still run;
// everything is torn down on every path.

export interface RunOptions {
  log: (line: string) => void;
  /** Chromium executable, --gpu and extra flags (default: system Chromium on SwiftShader). */
  chromium?: BrowserArgs;
  signal?: AbortSignal;
}

/** "2025-11-21T22:16:05.123Z" -> "20251121-221605" */
export function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.split('\n')[0] ?? ''}` : String(err);
}

const SETUP_TIMEOUT_MS = 60_000;

/** A file written beside the report: DIR/<report name><suffix>. */
export interface Attachment {
  suffix: string;
  data: ChromeTrace;
}

export async function runBench(
  settings: BenchSettings,
  opts: RunOptions,
): Promise<{ report: BenchReport; attachments: Attachment[] }> {
  const { log, signal } = opts;
  const started = new Date();
  const t0 = performance.now();
  const machine: MachineInfo = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    totalMemGiB: totalmem() / 2 ** 30,
    loadAvgStart: loadavg(),
    loadAvgEnd: [],
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    chromium: 'unknown',
    date: started.toISOString(),
    commit: gitCommit(),
  };
  const report: BenchReport = {
    name: `${stamp(started)}${runKind(settings)}`,
    machine,
    settings,
    clock: null,
    raw: null,
    allReduce: null,
    train: null,
    pipeline: null,
    dashboard: null,
    scaling: null,
    gpu: null,
    errors: [],
    durationMs: 0,
  };

  const attachments: Attachment[] = [];
  const nonce = `bench-${randomBytes(3).toString('hex')}`;
  const built = await ensureBuilt({ log, ...(signal ? { signal } : {}) });
  let signalServer: SignalServer | null = null;
  let staticServer: StaticServer | null = null;
  let browser: Browser | null = null;
  try {
    signalServer = await startSignalServer({
      host: '127.0.0.1',
      port: 0,
      path: '/peerjs',
      ...(signal ? { signal } : {}),
    });
    staticServer = await startStaticServer({
      root: resolve(built.outDir),
      host: '127.0.0.1',
      port: 0,
      signalInfo: { port: signalServer.port, path: signalServer.path, secure: false },
      ...(signal ? { signal } : {}),
    });
    // A switch Chromium ignores, to find its process tree in /proc for the CPU figures.
    const marker = `--peertrain-bench=${nonce}`;
    browser = await launchBrowser({
      args: [marker, ...(opts.chromium?.flags ?? [])],
      ...(opts.chromium ? { executablePath: opts.chromium.executablePath, gpu: opts.chromium.gpu } : {}),
      ...(signal ? { signal } : {}),
    });
    machine.chromium = browser.version();
    const meter = new CpuMeter(findProcessByArg(marker));

    const wantsTabs = settings.parts.includes('raw') || settings.parts.includes('allreduce');
    if (wantsTabs) {
      await runTabParts(report, browser, staticServer.url, meter, nonce, opts);
    }
    if (settings.parts.includes('train')) {
      log('train: 3 workers, MNIST MLP, allreduce then ps');
      report.train = await measureTraining({
        browser,
        dist: built.outDir,
        settings,
        log,
        ...(signal ? { signal } : {}),
      });
    }
    if (settings.parts.includes('pipeline')) {
      try {
        const { part, headlineTrace } = await measurePipeline({
          browser,
          baseUrl: staticServer.url,
          settings,
          nonce,
          chromiumPid: meter.chromiumPid,
          log,
          ...(signal ? { signal } : {}),
        });
        if (headlineTrace) {
          const { stages: p, microBatches: m } = settings.pipeline.headline;
          const suffix = `-trace-1f1b-P${p}-M${m}.json`;
          attachments.push({ suffix, data: headlineTrace });
          part.traceFile = `${report.name}${suffix}`;
        }
        report.pipeline = part;
        report.errors.push(
          ...part.rows.flatMap((r) => (r.ok ? [] : [`pipeline ${caseLabel(r)}: ${r.error}`])),
          ...(part.compression?.rows ?? []).flatMap((r) =>
            r.ok ? [] : [`pipeline CNN activations ${variantLabel(r.variant)}: ${r.error}`],
          ),
        );
      } catch (err) {
        signal?.throwIfAborted();
        report.errors.push(`pipeline: ${describe(err)}`);
      }
    }
    if (settings.parts.includes('dashboard')) {
      try {
        report.dashboard = await measureDashboard({
          browser,
          baseUrl: staticServer.url,
          ...settings.dashboard,
          log,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        signal?.throwIfAborted();
        report.errors.push(`dashboard: ${describe(err)}`);
      }
    }
    if (settings.parts.includes('scaling')) {
      try {
        const part = await measureScaling({
          browser,
          baseUrl: staticServer.url,
          settings: settings.scaling,
          nonce,
          ...(settings.oneProfile === true ? { oneProfile: true } : {}),
          log,
          ...(signal ? { signal } : {}),
        });
        report.scaling = part;
        report.errors.push(
          ...part.rows.flatMap((r) =>
            r.ok ? [] : [`scaling ${r.model} ${r.label} N=${r.tabs}: ${r.error}`],
          ),
          ...part.compression.flatMap((r) => (r.ok ? [] : [`scaling compress ${r.spec}: ${r.error}`])),
        );
      } catch (err) {
        signal?.throwIfAborted();
        report.errors.push(`scaling: ${describe(err)}`);
      }
    }
    if (settings.parts.includes('gpu')) await gpuPart(report, browser, staticServer.url, opts);
    for (const key of ['elastic', 'elasticDiloco'] as const) {
      const part = settings[key];
      if (!settings.parts.includes('elastic') || !part) continue;
      const opts = { browser, dist: built.outDir, settings: part, log };
      report[key] = await measureElastic({ ...opts, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
        signal?.throwIfAborted();
        report.errors.push(`${key}: ${describe(err)}`);
        return null;
      });
      report.errors.push(...(report[key] ? elasticErrors(report[key]) : []));
    }
    if (settings.parts.includes('links') && settings.links) {
      // Each run launches its own Chromium, after its link is applied (links.ts).
      const path = opts.chromium?.executablePath;
      const o = {
        dist: built.outDir,
        settings: settings.links,
        log,
        ...(path ? { executablePath: path } : {}),
      };
      report.links = await measureLinks({ ...o, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
        signal?.throwIfAborted();
        report.errors.push(`links: ${describe(err)}`);
        return null;
      });
      if (report.links) report.errors.push(...linksErrors(report.links));
    }
    if (settings.parts.includes('threads') && settings.threads) {
      const o = { browser, baseUrl: staticServer.url, settings: settings.threads, nonce, log };
      report.threads = await measureThreads({
        ...o,
        ...(settings.oneProfile === true ? { oneProfile: true } : {}),
        ...(signal ? { signal } : {}),
      }).catch((err: unknown) => {
        signal?.throwIfAborted();
        report.errors.push(`threads: ${describe(err)}`);
        return null;
      });
      if (report.threads) report.errors.push(...threadsErrors(report.threads));
    }
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    await Promise.allSettled([staticServer?.close(), signalServer?.close()]);
  }
  machine.loadAvgEnd = loadavg();
  report.durationMs = performance.now() - t0;
  return { report, attachments };
}

async function runTabParts(
  report: BenchReport,
  browser: Browser,
  baseUrl: string,
  meter: CpuMeter,
  nonce: string,
  opts: RunOptions,
): Promise<void> {
  const { settings } = report;
  const { log, signal } = opts;
  const count = Math.max(
    2,
    ...(settings.parts.includes('allreduce') ? settings.ns : []),
    settings.parts.includes('raw') ? 4 : 2,
  );
  log(`opening ${count} bench tabs`);
  const bench = await BenchTabs.open({
    browser,
    baseUrl,
    count,
    nonce,
    timeoutMs: SETUP_TIMEOUT_MS,
    onConsole: (tab, type, text) => {
      if (type === 'error' || type === 'pageerror') log(`tab ${tab} ${type}: ${text}`);
    },
    ...(signal ? { signal } : {}),
  });
  try {
    report.clock = { offsetsMs: bench.tabs.map((t) => t.offsetMs), maxErrorMs: bench.clockErrorMs };
    if (settings.parts.includes('raw')) {
      try {
        const { errors, ...raw } = await measureRaw(bench, meter, settings, log);
        report.raw = raw;
        report.errors.push(...errors.map((e) => `raw ${e}`));
      } catch (err) {
        signal?.throwIfAborted();
        report.errors.push(`raw: ${describe(err)}`);
      }
    }
    if (settings.parts.includes('allreduce')) {
      try {
        report.allReduce = await allReducePart(bench, meter, settings, report.raw?.figures ?? [], log);
      } catch (err) {
        signal?.throwIfAborted();
        report.errors.push(`allreduce: ${describe(err)}`);
      }
    }
  } finally {
    await bench.close();
  }
}

async function allReducePart(
  bench: BenchTabs,
  meter: CpuMeter,
  settings: BenchSettings,
  raw: readonly RawFigure[],
  log: (line: string) => void,
): Promise<NonNullable<BenchReport['allReduce']>> {
  const rawMbps = raw.find((f) => f.id === 'raw')?.perLinkMbps ?? Number.NaN;
  // The raw per-link rate with the same number of tabs streaming at once (duplex for N = 2).
  const rawRingMbps = (n: number): number | null =>
    raw.find((f) => f.id === (n === 2 ? 'duplex' : `ring${n}`))?.perLinkMbps ?? null;
  const done = new Map<string, AllReduceRow>();
  const run = async (c: AllReduceCase): Promise<AllReduceRow> => {
    const key = `${c.n}/${c.bucketElems}/${c.maxInFlight}/${c.transport.name}`;
    const cached = done.get(key);
    if (cached) return cached;
    const row = await measureAllReduce(
      bench,
      meter,
      settings,
      c,
      { rawMbps, rawRingMbps: rawRingMbps(c.n) },
      log,
    );
    log(
      `all-reduce N=${c.n} bucket=${c.bucketElems} inFlight=${c.maxInFlight ?? 'default'} frames=${row.frameBytes}: ` +
        `${row.medianMs.toFixed(0)} ms, busbw ${row.busbwMbps.toFixed(1)} MB/s` +
        (row.mismatches > 0 ? `, ${row.mismatches} WRONG` : ''),
    );
    done.set(key, row);
    return row;
  };
  const base = { bucketElems: settings.bucketElems, maxInFlight: null, transport: TRANSPORTS.mesh };
  const rows: AllReduceRow[] = [];
  for (const n of settings.ns) rows.push(await run({ ...base, n }));
  const sweepN = settings.ns.includes(3) ? 3 : (settings.ns.at(-1) ?? 2);
  const sweep: AllReduceRow[] = [];
  for (const bucketElems of settings.sweepBuckets) sweep.push(await run({ ...base, n: sweepN, bucketElems }));
  const inFlight: AllReduceRow[] = [];
  for (const maxInFlight of settings.quick ? [1] : [1, 2, 8])
    inFlight.push(await run({ ...base, n: sweepN, maxInFlight }));
  const frames = [await run({ ...base, n: sweepN, transport: TRANSPORTS.meshBigFrames })];
  const memory: MemoryRow[] = [];
  for (const n of settings.ns) {
    const m = await measureMemoryAllReduce(bench, settings, n, settings.bucketElems);
    log(`memory all-reduce N=${n}: ${m.ms.toFixed(0)} ms, busbw ${m.busbwMbps.toFixed(1)} MB/s per rank`);
    memory.push(m);
  }
  return { rawMbps, rows, sweep, inFlight, frames, memory };
}

async function gpuPart(
  report: BenchReport,
  browser: Browser,
  baseUrl: string,
  opts: RunOptions,
): Promise<void> {
  const { settings } = report;
  try {
    report.gpu = await measureGpu({
      browser,
      baseUrl,
      quick: settings.quick,
      // --gpu, or the part named alone (--only gpu): run it on a software adapter too
      force: opts.chromium?.gpu === true || settings.parts.length === 1,
      log: opts.log,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    report.errors.push(
      ...report.gpu.rows.flatMap((r) =>
        r.error ? [`gpu ${r.model} ${r.backend} ${r.batch}: ${r.error}`] : [],
      ),
    );
  } catch (err) {
    opts.signal?.throwIfAborted();
    report.errors.push(`gpu: ${describe(err)}`);
  }
}
