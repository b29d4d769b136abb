// Display formatting shared by both pages. Pure: numbers in, short strings out.

const DASH = '–';

/**
 * Grouped thousands ("1,234"), as `toLocaleString('en-US')` writes them, from one formatter: each
 * toLocaleString call builds its own, and the worker page formats at every redraw while it trains.
 */
const grouped = new Intl.NumberFormat('en-US');

/** 1234567 -> "1.23 MB" (SI units, as network tools report bytes). */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return DASH;
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u] ?? ''}`;
}

/** 203520 -> "204k", 1234567 -> "1.23M", 980 -> "980": a count at a glance. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return DASH;
  // Thresholds at what rounds up to the next unit: 999.6 reads "1.00k", not "1000".
  if (n < 999.5) return String(Math.round(n));
  const [v, unit] = n < 999_500 ? [n / 1e3, 'k'] : n < 999_500_000 ? [n / 1e6, 'M'] : [n / 1e9, 'G'];
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`;
}

/** Milliseconds with a precision that suits the size: 0.42 ms, 12.3 ms, 1,234 ms. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return DASH;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${grouped.format(Math.round(ms))} ms`;
}

/** Remaining time as m:ss, or h:mm:ss past an hour; a dash when unknown. */
export function formatEta(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return DASH;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A throughput such as samples/s: 3 significant figures, thousands separated. */
export function formatRate(perSec: number | null | undefined, unit: string): string {
  if (perSec === null || perSec === undefined || !Number.isFinite(perSec) || perSec < 0) return DASH;
  const v = perSec >= 100 ? grouped.format(Math.round(perSec)) : perSec.toPrecision(3);
  return `${v} ${unit}`;
}

export function formatGflops(g: number | null | undefined): string {
  if (g === null || g === undefined || !Number.isFinite(g)) return DASH;
  return g >= 10 ? g.toFixed(1) : g.toFixed(2);
}

export function formatLoss(loss: number | null | undefined): string {
  if (loss === null || loss === undefined) return DASH;
  if (!Number.isFinite(loss)) return String(loss);
  return loss.toFixed(4);
}

export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return DASH;
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** Training-sample range of a shard: "0–19,999 (20,000)". */
export function formatShard(shard: { start: number; count: number } | null | undefined): string {
  if (!shard) return DASH;
  const last = shard.start + shard.count - 1;
  return `${grouped.format(shard.start)}–${grouped.format(last)} (${grouped.format(shard.count)})`;
}

export function orDash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === '' ? DASH : String(v);
}

/** A link's throughput: 21300000 -> "21.3 MB/s" (SI, like formatBytes). */
export function formatBandwidth(bytesPerSec: number | null | undefined): string {
  const b = formatBytes(bytesPerSec);
  return b === DASH ? DASH : `${b}/s`;
}
