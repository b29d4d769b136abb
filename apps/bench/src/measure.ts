import { ConfigError } from '@peertrain/protocol';
import type { AllReduceRow, BenchReport, BenchSettings, CpuUse, MemoryRow, RawFigure } from './report.ts';
import { algBandwidth, busBandwidth, cpuBusy, mbPerSec, median, quantile, ratio } from './metrics.ts';
import type { CpuTimes } from './metrics.ts';
import { TICKS_PER_SEC, cpuMsBetween, emptyRoleMs, snapshotTree, totalMs } from './procfs.ts';
import type { CpuSnapshot } from './procfs.ts';
import { driverNow, readCpu } from './tabs.ts';
import type { BenchTabs, Tab, TransportSpec } from './tabs.ts';

// Parts 1 and 2 of the benchmark, driven from Node over the open bench tabs. Every transfer starts
// at one agreed instant (driver time + START_MARGIN_MS, converted to each page's clock) so that
// concurrent senders really overlap, and is timed from the first start to the last byte received.
// Around each one, the CPU time of Chromium's processes is read from /proc (procfs.ts).

/** Lead time for every tab to receive its call before the agreed start. */
const START_MARGIN_MS = 120;
/** Per-operation timeout inside the pages. */
const OP_TIMEOUT_MS = 120_000;
const KIB = 1024;
const MIB = 2 ** 20;
/** The Mesh's default frame size (and the second raw message size). */
const MSG_64K = 64 * KIB;

/** Transports each tab may open; the name picks one. */
export const TRANSPORTS = {
  raw: { name: 'raw', kind: 'raw' },
  // Chromium refuses a send once 16 MiB are queued ("send queue is full"); the adapter caps every
  // link's high-water mark at 16 MiB - 2 * maxMessageSize.
  rawHwm256k: { name: 'rawh256k', kind: 'raw', highWaterMark: 256 * KIB },
  rawHwm1m: { name: 'rawh1m', kind: 'raw', highWaterMark: MIB },
  rawHwm8m: { name: 'rawh8m', kind: 'raw', highWaterMark: 8 * MIB },
  mesh: { name: 'mesh', kind: 'mesh' },
  meshBigFrames: { name: 'mesh256k', kind: 'mesh', maxFrameBytes: 256 * KIB },
} as const satisfies Record<string, TransportSpec>;

/** Machine and Chromium CPU counters at one instant. */
export interface CpuMark {
  t: number;
  machine: CpuTimes | null;
  chromium: CpuSnapshot;
}

/** Reads the counters now (Chromium's: the process tree under `chromiumPid`). */
export function markCpu(chromiumPid: number | null): CpuMark {
  return { t: performance.now(), machine: readCpu(), chromium: snapshotTree(chromiumPid) };
}

/** CPU use between two marks of the same process tree. */
export function cpuBetween(a: CpuMark, b: CpuMark, chromiumPid: number | null): CpuUse {
  const wallMs = b.t - a.t;
  const chromium = chromiumPid === null ? emptyRoleMs() : cpuMsBetween(a.chromium, b.chromium, TICKS_PER_SEC);
  return {
    wallMs,
    machineBusy: a.machine && b.machine ? cpuBusy(a.machine, b.machine) : Number.NaN,
    chromiumMs: chromium,
    chromiumCores: totalMs(chromium) / wallMs,
  };
}

/** Measures machine and Chromium CPU use around an operation. */
export class CpuMeter {
  constructor(readonly chromiumPid: number | null) {}

  async around<T>(fn: () => Promise<T>): Promise<{ result: T; cpu: CpuUse }> {
    const a = markCpu(this.chromiumPid);
    const result = await fn();
    return { result, cpu: cpuBetween(a, markCpu(this.chromiumPid), this.chromiumPid) };
  }
}

interface LinkSpec {
  from: Tab;
  to: Tab;
}

interface Transfer {
  perLinkMbps: number[];
  aggregateMbps: number;
  ms: number;
}

const startAfterMargin = (): number => driverNow() + START_MARGIN_MS;

/** CPU milliseconds of Chromium per MB of payload moved. */
function cpuPerMb(cpu: CpuUse, payloadBytes: number): number {
  return payloadBytes > 0 ? totalMs(cpu.chromiumMs) / (payloadBytes / 1e6) : Number.NaN;
}

/** Every link streams `bytes` over transport `name` at once, in `msgBytes` sends; receivers count. */
async function rawTransfer(
  bench: BenchTabs,
  name: string,
  links: readonly LinkSpec[],
  bytes: number,
  msgBytes: number,
): Promise<Transfer> {
  await Promise.all(
    links.map((l) =>
      bench.call(l.to, 'rawArm', {
        local: bench.id(l.to, name),
        from: bench.id(l.from, name),
        bytes,
        timeoutMs: OP_TIMEOUT_MS,
      }),
    ),
  );
  const startAt = startAfterMargin();
  const results = await Promise.all(
    links.map(async (l) => {
      const [sent, got] = await Promise.all([
        bench.call(l.from, 'rawSend', {
          local: bench.id(l.from, name),
          to: bench.id(l.to, name),
          bytes,
          msgBytes,
          startAt: bench.toPage(l.from, startAt),
          timeoutMs: OP_TIMEOUT_MS,
        }),
        bench.call(l.to, 'rawWait', {
          local: bench.id(l.to, name),
          from: bench.id(l.from, name),
          timeoutMs: OP_TIMEOUT_MS,
        }),
      ]);
      if (got.bytes !== bytes)
        throw new ConfigError('raw transfer', [`expected ${bytes} bytes, counted ${got.bytes}`]);
      return { start: bench.toDriver(l.from, sent.startEpoch), end: bench.toDriver(l.to, got.endEpoch) };
    }),
  );
  const first = Math.min(...results.map((r) => r.start));
  const last = Math.max(...results.map((r) => r.end));
  return {
    perLinkMbps: results.map((r) => mbPerSec(bytes, r.end - r.start)),
    aggregateMbps: mbPerSec(bytes * links.length, last - first),
    ms: last - first,
  };
}

/** Dials transport `name`'s links (each [from, to] pair of tab indices); returns the smallest maxMessageSize. */
async function connectLinks(
  bench: BenchTabs,
  name: string,
  links: readonly [number, number][],
): Promise<number> {
  let maxMessageSize = Number.POSITIVE_INFINITY;
  for (const [a, b] of links) {
    const r = await bench.call(bench.tab(a), 'connect', {
      local: bench.id(bench.tab(a), name),
      peerId: bench.id(bench.tab(b), name),
      timeoutMs: OP_TIMEOUT_MS,
    });
    if (r.maxMessageSize > 0) maxMessageSize = Math.min(maxMessageSize, r.maxMessageSize);
  }
  return maxMessageSize;
}

interface FigureSpec {
  id: string;
  label: string;
  links: number;
  msgBytes: number;
  bytesPerLink: number;
  wireOverhead?: number;
}

function figure(spec: FigureSpec, t: Transfer, measured: CpuUse): RawFigure {
  // Cores over the transfer itself (the meter's wall time also holds the start margin).
  const cpu = { ...measured, chromiumCores: totalMs(measured.chromiumMs) / t.ms };
  return {
    ...spec,
    wireOverhead: spec.wireOverhead ?? 1,
    perLinkMbps: median(t.perLinkMbps),
    minLinkMbps: Math.min(...t.perLinkMbps),
    aggregateMbps: t.aggregateMbps,
    ms: t.ms,
    cpu,
    cpuMsPerMb: cpuPerMb(cpu, spec.bytesPerLink * spec.links),
  };
}

const ring = (bench: BenchTabs, n: number): LinkSpec[] =>
  Array.from({ length: n }, (_, i) => ({ from: bench.tab(i), to: bench.tab((i + 1) % n) }));

/**
 * Part 1: raw Connection throughput 0 -> 1 (messages of maxMessageSize and of 64 KiB, high-water
 * marks 256 KiB, 1 MiB, default 4 MiB, 8 MiB), the same bytes as one Mesh tensor (64 KiB and 256 KiB frames),
 * then both directions at once and rings of 3 and 4 tabs streaming at once: the ceiling of the
 * all-reduce's busbw under the same contention. A test that fails is reported in `errors` and
 * the others still run.
 */
export async function measureRaw(
  bench: BenchTabs,
  meter: CpuMeter,
  settings: BenchSettings,
  log: (line: string) => void,
): Promise<NonNullable<BenchReport['raw']> & { errors: string[] }> {
  const n = bench.tabs.length;
  const { raw, rawHwm256k, rawHwm1m, rawHwm8m } = TRANSPORTS;
  const hwms = [rawHwm256k, rawHwm1m, rawHwm8m];
  for (const spec of [raw, ...hwms]) await bench.ensureTransport(spec);
  const ringLinks: [number, number][] = [
    [0, 1],
    [1, 0],
  ];
  for (const k of [3, 4].filter((k) => k <= n)) for (let i = 1; i < k; i++) ringLinks.push([i, (i + 1) % k]);
  const uniq = [...new Map(ringLinks.map((p) => [p.join('>'), p] as const)).values()];
  const maxMessageSize = await connectLinks(bench, raw.name, uniq);
  for (const spec of hwms) await connectLinks(bench, spec.name, [[0, 1]]);

  const bytes = settings.rawBytes;
  const warm = Math.min(bytes, 4 * MIB);
  // Warm-up of every link: the first megabytes of a fresh SCTP association are slower
  // (congestion window), and the first sends of a page run unoptimised code.
  for (const [i, j] of uniq)
    await rawTransfer(bench, raw.name, [{ from: bench.tab(i), to: bench.tab(j) }], warm, maxMessageSize);
  for (const spec of hwms)
    await rawTransfer(bench, spec.name, [{ from: bench.tab(0), to: bench.tab(1) }], warm, maxMessageSize);

  const figures: RawFigure[] = [];
  const errors: string[] = [];
  let ping: { medianMs: number; p90Ms: number; count: number } | null = null;
  const pair: LinkSpec[] = [{ from: bench.tab(0), to: bench.tab(1) }];
  const attempt = async (id: string, fn: () => Promise<RawFigure>): Promise<void> => {
    try {
      const f = await fn();
      figures.push(f);
      log(`${id}: ${f.perLinkMbps.toFixed(1)} MB/s per link`);
    } catch (err) {
      if (bench.aborted) throw err;
      errors.push(`${id}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      log(`${id} failed: ${errors.at(-1)}`);
    }
  };
  const one = (spec: FigureSpec, name: string, links: LinkSpec[]): Promise<void> =>
    attempt(spec.id, async () => {
      const { result, cpu } = await meter.around(() => rawTransfer(bench, name, links, bytes, spec.msgBytes));
      return figure(spec, result, cpu);
    });
  const base = { links: 1, msgBytes: maxMessageSize, bytesPerLink: bytes };
  await one({ ...base, id: 'raw', label: 'raw Connection, 2 tabs, one way' }, raw.name, pair);
  await one({ ...base, id: 'raw64k', label: 'raw, 64 KiB sends', msgBytes: MSG_64K }, raw.name, pair);
  for (const spec of hwms) {
    const hwm = spec.highWaterMark;
    const label = `raw, high-water mark ${hwm >= MIB ? `${hwm / MIB} MiB` : `${hwm / KIB} KiB`}`;
    await one({ ...base, id: spec.name.replace('rawh', 'hwm'), label }, spec.name, pair);
  }
  try {
    ping = await measurePing(bench, 50);
    log(`mesh round trip: median ${ping.medianMs.toFixed(2)} ms, p90 ${ping.p90Ms.toFixed(2)} ms`);
  } catch (err) {
    if (bench.aborted) throw err;
    errors.push(`ping: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  await attempt('mesh64k', () => meshTransfer(bench, meter, TRANSPORTS.mesh, bytes, MSG_64K));
  await attempt('mesh256k', () => meshTransfer(bench, meter, TRANSPORTS.meshBigFrames, bytes, 256 * KIB));
  const both: LinkSpec[] = [...pair, { from: bench.tab(1), to: bench.tab(0) }];
  await one({ ...base, id: 'duplex', label: 'raw, 2 tabs, both ways at once', links: 2 }, raw.name, both);
  for (const k of [3, 4].filter((k) => k <= n)) {
    await one(
      { ...base, id: `ring${k}`, label: `raw ring of ${k} tabs, all at once`, links: k },
      raw.name,
      ring(bench, k),
    );
  }
  return { maxMessageSize, figures, ping, errors };
}

/** Round trip of a 4-byte tensor through the Mesh, tab 0 -> 1 -> 0: median and 90th percentile. */
export async function measurePing(
  bench: BenchTabs,
  count: number,
): Promise<{ medianMs: number; p90Ms: number; count: number }> {
  const spec = TRANSPORTS.mesh;
  await bench.ensureTransport(spec);
  await connectLinks(bench, spec.name, [[0, 1]]);
  const a = bench.tab(0);
  const b = bench.tab(1);
  const opts = { count, tag: 1000, timeoutMs: OP_TIMEOUT_MS };
  const [rtts] = await Promise.all([
    bench.call(a, 'ping', { ...opts, local: bench.id(a, spec.name), peer: bench.id(b, spec.name) }),
    bench.call(b, 'pong', { ...opts, local: bench.id(b, spec.name), peer: bench.id(a, spec.name) }),
  ]);
  // The first few include unoptimised code: skip them.
  const kept = rtts.slice(Math.min(5, Math.floor(rtts.length / 2))).sort((x, y) => x - y);
  return {
    medianMs: median(kept),
    p90Ms: quantile(kept, 0.9),
    count: kept.length,
  };
}

/** One `bytes` tensor from tab 0 to tab 1 through a Mesh (after a 4 MiB warm-up tensor). */
async function meshTransfer(
  bench: BenchTabs,
  meter: CpuMeter,
  spec: TransportSpec,
  bytes: number,
  frameBytes: number,
): Promise<RawFigure> {
  await bench.ensureTransport(spec);
  await connectLinks(bench, spec.name, [[0, 1]]);
  const a = bench.tab(0);
  const b = bench.tab(1);
  const run = async (tag: number, size: number): Promise<{ t: Transfer; wire: number }> => {
    const startAt = startAfterMargin();
    const [sent, got] = await Promise.all([
      bench.call(a, 'meshSend', {
        local: bench.id(a, spec.name),
        to: bench.id(b, spec.name),
        bytes: size,
        tag,
        startAt: bench.toPage(a, startAt),
        timeoutMs: OP_TIMEOUT_MS,
      }),
      bench.call(b, 'meshRecv', {
        local: bench.id(b, spec.name),
        from: bench.id(a, spec.name),
        bytes: size,
        tag,
        timeoutMs: OP_TIMEOUT_MS,
      }),
    ]);
    const ms = bench.toDriver(b, got.endEpoch) - bench.toDriver(a, sent.startEpoch);
    const mbps = mbPerSec(size, ms);
    return { t: { perLinkMbps: [mbps], aggregateMbps: mbps, ms }, wire: sent.wireBytes };
  };
  await run(1, Math.min(bytes, 4 * MIB));
  const { result, cpu } = await meter.around(() => run(2, bytes));
  const label = `Mesh, one tensor, ${frameBytes / KIB} KiB frames`;
  return figure(
    {
      id: `mesh${frameBytes / KIB}k`,
      label,
      links: 1,
      msgBytes: frameBytes,
      bytesPerLink: bytes,
      wireOverhead: result.wire / bytes,
    },
    result.t,
    cpu,
  );
}

export interface AllReduceCase {
  n: number;
  bucketElems: number;
  maxInFlight: number | null;
  /** Which mesh transport (frame size). */
  transport: TransportSpec;
}

let nextRunId = 1;

/** Part 2: `warmup` + `reps` ring all-reduces of S bytes over the first n tabs, all tabs at once. */
export async function measureAllReduce(
  bench: BenchTabs,
  meter: CpuMeter,
  settings: BenchSettings,
  c: AllReduceCase,
  baselines: { rawMbps: number; rawRingMbps: number | null },
  log?: (line: string) => void,
): Promise<AllReduceRow> {
  const tabs = bench.tabs.slice(0, c.n);
  if (tabs.length < c.n) throw new ConfigError('all-reduce', [`need ${c.n} tabs, have ${tabs.length}`]);
  const name = c.transport.name;
  await bench.ensureTransport(c.transport);
  // Ring links (rank r dials r + 1), opened before timing.
  await connectLinks(
    bench,
    name,
    tabs.map((_, r) => [r, (r + 1) % c.n] as [number, number]),
  );
  const group = tabs.map((t) => bench.id(t, name));
  const sizeElems = settings.allReduceBytes / 4;
  const runId = nextRunId++;
  const repsMs: number[] = [];
  const skews: number[] = [];
  const sent: number[] = [];
  const cpus: CpuUse[] = [];
  let mismatches = 0;
  for (let rep = 0; rep < settings.warmup + settings.reps; rep++) {
    const startAt = startAfterMargin();
    const { result: results, cpu } = await meter.around(() =>
      Promise.all(
        tabs.map((t) =>
          bench.call(t, 'allReduce', {
            local: bench.id(t, name),
            group,
            runId,
            step: rep,
            sizeElems,
            bucketElems: c.bucketElems,
            ...(c.maxInFlight !== null ? { maxInFlight: c.maxInFlight } : {}),
            startAt: bench.toPage(t, startAt),
            timeoutMs: OP_TIMEOUT_MS,
          }),
        ),
      ),
    );
    mismatches += results.reduce((s, r) => s + r.mismatches, 0);
    if (rep < settings.warmup) continue;
    if (log) {
      for (const [r, res] of results.entries()) {
        const t = res.trace;
        if (!t) continue;
        const f = (x: number): string => x.toFixed(1);
        log(
          `  trace N=${c.n} b=${c.bucketElems} rep ${rep} rank ${r}: ${f(res.endEpoch - res.startEpoch)} ms, ` +
            `first send/recv +${f(t.firstSendMs)}/+${f(t.firstRecvMs)}, last send/recv -${f(t.lastSendMs)}/-${f(t.lastRecvMs)}, ` +
            `sends ${t.sends} (${t.sendsOnEmpty} on empty), waits ${t.waits} ${f(t.waitMs)} ms, ` +
            `recv gaps>5ms ${t.recvGaps} ${f(t.recvGapMs)} ms (max ${f(t.maxRecvGapMs)}), recv ${f(t.recvMbps)} MB/s`,
        );
      }
    }
    const starts = results.map((r, i) => bench.toDriver(bench.tab(i), r.startEpoch));
    const ends = results.map((r, i) => bench.toDriver(bench.tab(i), r.endEpoch));
    repsMs.push(Math.max(...ends) - Math.min(...starts));
    skews.push(Math.max(...starts) - Math.min(...starts));
    sent.push(...results.map((r) => r.stats.bytesSent));
    cpus.push(cpu);
  }
  const medianMs = median(repsMs);
  const busbw = busBandwidth(settings.allReduceBytes, c.n, medianMs);
  const cpu = { ...sumCpu(cpus) };
  cpu.chromiumCores = totalMs(cpu.chromiumMs) / repsMs.reduce((a, b) => a + b, 0);
  const bytesSentPerWorker = median(sent);
  return {
    n: c.n,
    bucketElems: c.bucketElems,
    maxInFlight: c.maxInFlight,
    frameBytes:
      c.transport.kind === 'mesh' && 'maxFrameBytes' in c.transport ? c.transport.maxFrameBytes : MSG_64K,
    sizeBytes: settings.allReduceBytes,
    repsMs,
    medianMs,
    algbwMbps: algBandwidth(settings.allReduceBytes, medianMs),
    busbwMbps: busbw,
    ratioRaw: ratio(busbw, baselines.rawMbps),
    ratioRawRing: baselines.rawRingMbps === null ? null : ratio(busbw, baselines.rawRingMbps),
    aggregateMbps: c.n * busbw,
    bytesSentPerWorker,
    maxStartSkewMs: Math.max(...skews),
    cpu,
    // Per MB sent by all workers together (what the data channels carried).
    cpuMsPerMb: cpuPerMb(cpu, bytesSentPerWorker * c.n * cpus.length),
    mismatches,
  };
}

/** Sums the CPU use of several measured operations (busy fraction and cores: time-weighted). */
function sumCpu(list: readonly CpuUse[]): CpuUse {
  const wallMs = list.reduce((s, c) => s + c.wallMs, 0);
  const chromiumMs = emptyRoleMs();
  for (const c of list)
    for (const k of Object.keys(chromiumMs) as (keyof typeof chromiumMs)[]) chromiumMs[k] += c.chromiumMs[k];
  const busy = list.reduce((s, c) => s + c.machineBusy * c.wallMs, 0) / wallMs;
  return { wallMs, machineBusy: busy, chromiumMs, chromiumCores: totalMs(chromiumMs) / wallMs };
}

/** The same all-reduce with n ranks inside tab 0 over the memory transport: CPU cost only. */
export async function measureMemoryAllReduce(
  bench: BenchTabs,
  settings: BenchSettings,
  n: number,
  bucketElems: number,
): Promise<MemoryRow> {
  const sizeElems = settings.allReduceBytes / 4;
  const times: number[] = [];
  let mismatches = 0;
  for (let rep = 0; rep < settings.warmup + settings.reps; rep++) {
    const r = await bench.call(bench.tab(0), 'memoryAllReduce', {
      n,
      sizeElems,
      bucketElems,
      timeoutMs: OP_TIMEOUT_MS,
    });
    mismatches += r.mismatches;
    if (rep >= settings.warmup) times.push(r.ms);
  }
  const ms = median(times);
  return { n, bucketElems, ms, busbwMbps: busBandwidth(settings.allReduceBytes, n, ms), mismatches };
}
