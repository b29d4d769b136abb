// Pure arithmetic of the benchmark: rates, the ring all-reduce's bus bandwidth, medians, clock
// offsets and CPU load. No I/O here (tested in metrics.test.ts).

/** 1 MB = 10^6 bytes (rates are MB/s, as network rates are usually quoted). */
export const MB = 1e6;

/** MB/s for `bytes` moved in `ms` milliseconds. */
export function mbPerSec(bytes: number, ms: number): number {
  if (!(ms > 0)) return Number.NaN;
  return bytes / MB / (ms / 1000);
}

/**
 * Bytes each of `n` ring workers sends to all-reduce `sizeBytes`: 2(n-1)/n * S (reduce-scatter
 * then all-gather, each n-1 rounds of S/n). The bandwidth-optimal figure (packages/collective/README.md).
 */
export function ringBytesPerWorker(sizeBytes: number, n: number): number {
  if (n < 2) return 0;
  return (sizeBytes * 2 * (n - 1)) / n;
}

/** Algorithm bandwidth: S / t, in MB/s (how fast a gradient of S bytes is summed). */
export function algBandwidth(sizeBytes: number, ms: number): number {
  return mbPerSec(sizeBytes, ms);
}

/**
 * Bus bandwidth: (S * 2(n-1)/n) / t, in MB/s: what each worker pushes through its link per second,
 * comparable to the raw point-to-point rate of a data channel (nccl-tests' definition).
 */
export function busBandwidth(sizeBytes: number, n: number, ms: number): number {
  return mbPerSec(ringBytesPerWorker(sizeBytes, n), ms);
}

/** Median of `xs` (mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? Number.NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? Number.NaN) + hi) / 2;
}

/** The value at fraction `q` (0..1) of an ascending `sorted` array (nearest rank); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
}

/** a / b, NaN when b is not a positive number. */
export function ratio(a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN;
}

/** One clock exchange: driver time before the call, the page's reading, driver time after. */
export interface ClockSample {
  before: number;
  page: number;
  after: number;
}

/**
 * Page clock minus driver clock, from the sample with the shortest round trip (Cristian's
 * algorithm): page - (before + after) / 2. Its error is at most half that round trip.
 */
export function clockOffset(samples: readonly ClockSample[]): { offsetMs: number; errorMs: number } {
  let best: ClockSample | undefined;
  for (const s of samples) if (!best || s.after - s.before < best.after - best.before) best = s;
  if (!best) throw new RangeError('clockOffset needs at least one sample');
  return { offsetMs: best.page - (best.before + best.after) / 2, errorMs: (best.after - best.before) / 2 };
}

/** Cumulative CPU jiffies of the whole machine, from the `cpu` line of /proc/stat. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Parses the aggregate `cpu ` line of /proc/stat (idle + iowait count as idle); null if absent. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null;
  // user nice system idle iowait irq softirq steal (guest is already inside user)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Fraction of all cores busy between two readings (0..1); NaN when nothing elapsed. */
export function cpuBusy(a: CpuTimes, b: CpuTimes): number {
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : Number.NaN;
}
