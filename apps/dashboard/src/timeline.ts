import type { Lane, SpanKind } from '@peertrain/protocol';
import type { PipelineView, TimelineSpan } from '@peertrain/coordinator';

// The pipeline timeline's pure half: time <-> pixel mapping, zoom and pan, one row per peer (a
// compute and a comm sub-row), culling to the visible window, and the rectangles and ticks to
// draw. No DOM here; components/Timeline.tsx draws what these return on a <canvas>.

/** A time range on the coordinator's clock, ms. */
export interface TimeWindow {
  startMs: number;
  endMs: number;
}

/** Look of each span kind: fill, text on it, short legend name. */
export const SPAN_STYLE: Readonly<Record<SpanKind, { fill: string; text: string; name: string }>> = {
  forward: { fill: '#3b82f6', text: '#ffffff', name: 'forward' },
  backward: { fill: '#f59e0b', text: '#1b2230', name: 'backward' },
  optimizer: { fill: '#8b5cf6', text: '#ffffff', name: 'optimizer' },
  compute: { fill: '#64748b', text: '#ffffff', name: 'compute' },
  eval: { fill: '#a3a3a3', text: '#1b2230', name: 'eval' },
  send: { fill: '#0d9488', text: '#ffffff', name: 'send' },
  recv: { fill: '#38bdf8', text: '#1b2230', name: 'recv' },
  allreduce: { fill: '#db2777', text: '#ffffff', name: 'all-reduce' },
  reduceScatter: { fill: '#be185d', text: '#ffffff', name: 'reduce-scatter' },
  allGather: { fill: '#f9a8d4', text: '#1b2230', name: 'all-gather' },
  wait: { fill: '#d6dbe3', text: '#5b6472', name: 'wait' },
  recovery: { fill: '#dc2626', text: '#ffffff', name: 'recovery' },
};

/** Legend order: compute kinds, then communication. */
export const LEGEND_KINDS: readonly SpanKind[] = [
  'forward',
  'backward',
  'optimizer',
  'compute',
  'eval',
  'send',
  'recv',
  'allreduce',
  'reduceScatter',
  'allGather',
  'wait',
  'recovery',
];

// ---------------------------------------------------------------- time <-> x

/** Pixel x (0 = left edge of the plot) of time `tMs` in a plot `widthPx` wide showing `win`. */
export function timeToX(tMs: number, win: TimeWindow, widthPx: number): number {
  return ((tMs - win.startMs) / (win.endMs - win.startMs)) * widthPx;
}

export function xToTime(x: number, win: TimeWindow, widthPx: number): number {
  return win.startMs + (x / widthPx) * (win.endMs - win.startMs);
}

/** Narrowest window (50 µs: a small send) and widest (10 minutes) zoom may reach. */
export const MIN_WINDOW_MS = 0.05;
export const MAX_WINDOW_MS = 600_000;

/**
 * `win` scaled by `factor` (< 1 zooms in) around `anchorMs`, which keeps its place on screen
 * (the time under the cursor stays under the cursor). The width is clamped to [MIN, MAX].
 */
export function zoomAt(win: TimeWindow, anchorMs: number, factor: number): TimeWindow {
  const width = win.endMs - win.startMs;
  const next = Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, width * factor));
  const f = (anchorMs - win.startMs) / width;
  const startMs = anchorMs - f * next;
  return { startMs, endMs: startMs + next };
}

/** Zoom factor of one wheel event: smooth on trackpads, ~15% per mouse-wheel notch. */
export function wheelFactor(deltaY: number, deltaMode: number): number {
  // deltaMode 1: lines, 2: pages; 0: pixels (a notch is about 100 px).
  const px = deltaMode === 1 ? deltaY * 33 : deltaMode === 2 ? deltaY * 800 : deltaY;
  return Math.exp(Math.max(-300, Math.min(300, px)) * 0.0014);
}

/** `win` dragged by `dxPx` pixels (positive: content moves right, the window goes back in time). */
export function panBy(win: TimeWindow, dxPx: number, widthPx: number): TimeWindow {
  const dMs = (dxPx / widthPx) * (win.endMs - win.startMs);
  return { startMs: win.startMs - dMs, endMs: win.endMs - dMs };
}

// ---------------------------------------------------------------- spans, indexed by start

export interface SpanIndex {
  /** Sorted by startMs. */
  spans: readonly TimelineSpan[];
  /** Longest duration: a span starting this much before a window may still reach into it. */
  maxDurMs: number;
  /** Earliest start and latest end, null when empty. */
  extent: TimeWindow | null;
  /** Highest step seen, -1 when empty. */
  lastStep: number;
  /** Where each step starts (its earliest span), in time order. */
  steps: readonly { step: number; startMs: number }[];
}

export function indexSpans(spans: readonly TimelineSpan[]): SpanIndex {
  // The coordinator appends spans roughly in time order: skip the sort when they already are.
  let sortedAlready = true;
  for (let i = 1; i < spans.length && sortedAlready; i++) {
    if ((spans[i]?.startMs ?? 0) < (spans[i - 1]?.startMs ?? 0)) sortedAlready = false;
  }
  const sorted = sortedAlready ? spans : [...spans].sort((a, b) => a.startMs - b.startMs);
  let maxDurMs = 0;
  let end = -Infinity;
  let lastStep = -1;
  const firstOfStep = new Map<number, number>();
  for (const s of sorted) {
    maxDurMs = Math.max(maxDurMs, s.durMs);
    end = Math.max(end, s.startMs + s.durMs);
    lastStep = Math.max(lastStep, s.step);
    if (!firstOfStep.has(s.step)) firstOfStep.set(s.step, s.startMs); // sorted: the earliest
  }
  const first = sorted[0];
  return {
    spans: sorted,
    maxDurMs,
    extent: first ? { startMs: first.startMs, endMs: end } : null,
    lastStep,
    steps: [...firstOfStep]
      .map(([step, startMs]) => ({ step, startMs }))
      .sort((a, b) => a.startMs - b.startMs),
  };
}

/** First index whose startMs >= t (binary search). */
function lowerBound(spans: readonly TimelineSpan[], t: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((spans[mid]?.startMs ?? Infinity) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The spans that overlap `win`, in start order: O(log n + candidates), not O(n). */
export function visibleSpans(index: SpanIndex, win: TimeWindow): TimelineSpan[] {
  const { spans } = index;
  const lo = lowerBound(spans, win.startMs - index.maxDurMs);
  const out: TimelineSpan[] = [];
  for (let i = lo; i < spans.length; i++) {
    const s = spans[i];
    if (!s || s.startMs > win.endMs) break;
    if (s.startMs + s.durMs >= win.startMs) out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------- windows

/** Everything, with a little air on both sides; null when there is nothing. */
export function fitWindow(index: SpanIndex): TimeWindow | null {
  const e = index.extent;
  if (!e) return null;
  const pad = Math.max(MIN_WINDOW_MS, (e.endMs - e.startMs) * 0.02);
  return { startMs: e.startMs - pad, endMs: e.endMs + pad };
}

/** Steps shown in "follow live". */
export const LIVE_STEPS = 3;

/**
 * "Follow live": from the start of step lastStep - steps + 1 to the latest end, with 3% air at
 * the right so the newest span does not touch the edge. Null when there are no spans.
 */
export function liveWindow(index: SpanIndex, steps: number = LIVE_STEPS): TimeWindow | null {
  const e = index.extent;
  if (!e) return null;
  const fromStep = index.lastStep - steps + 1;
  let start = e.startMs;
  for (const s of index.steps) {
    if (s.step >= fromStep) {
      start = s.startMs; // in time order: the first match is the earliest
      break;
    }
  }
  const width = Math.max(MIN_WINDOW_MS, e.endMs - start);
  return { startMs: start, endMs: start + width * 1.03 };
}

// ---------------------------------------------------------------- rows

/** Vertical sizes, CSS px. */
export const ROW = { axis: 22, compute: 20, comm: 12, subGap: 2, gap: 10 } as const;

export interface PeerRow {
  peerId: string;
  /** Top of the compute sub-row, and of the comm sub-row under it. */
  computeY: number;
  commY: number;
  /** Bottom of the comm sub-row. */
  bottom: number;
}

export interface RowLayout {
  rows: PeerRow[];
  byPeer: ReadonlyMap<string, PeerRow>;
  /** Total height, axis included. */
  height: number;
}

/**
 * Row order: a pipeline's peers by (replica, stage), so the schedule reads top to bottom; then
 * every other peer that has spans, in id order.
 */
export function peerOrder(spans: readonly TimelineSpan[], pipeline: PipelineView | null): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  if (pipeline) {
    const byPlace = [...pipeline.assignments].sort((a, b) => a.replica - b.replica || a.stage - b.stage);
    for (const a of byPlace) {
      if (!seen.has(a.peerId)) order.push(a.peerId);
      seen.add(a.peerId);
    }
  }
  const rest = new Set<string>();
  for (const s of spans) if (!seen.has(s.peerId)) rest.add(s.peerId);
  return [...order, ...[...rest].sort()];
}

export function layoutRows(peerIds: readonly string[]): RowLayout {
  const rows: PeerRow[] = [];
  let y = ROW.axis + ROW.gap / 2;
  for (const peerId of peerIds) {
    const commY = y + ROW.compute + ROW.subGap;
    const bottom = commY + ROW.comm;
    rows.push({ peerId, computeY: y, commY, bottom });
    y = bottom + ROW.gap;
  }
  return { rows, byPeer: new Map(rows.map((r) => [r.peerId, r])), height: y - ROW.gap / 2 };
}

function laneY(row: PeerRow, lane: Lane): { y: number; h: number } {
  return lane === 'compute' ? { y: row.computeY, h: ROW.compute } : { y: row.commY, h: ROW.comm };
}

// ---------------------------------------------------------------- rectangles to draw

export interface SpanRect {
  x: number;
  y: number;
  w: number;
  h: number;
  kind: SpanKind;
  /** The first span drawn in this rect. */
  span: TimelineSpan;
  /** How many spans it stands for (> 1 when narrow neighbours were merged). */
  count: number;
}

/** Spans narrower than this are merged into their neighbours. */
export const MERGE_BELOW_PX = 2;

/**
 * The rectangles for the spans visible in `win`, clipped to [0, widthPx], at least 1 px wide so a
 * short send stays visible. A narrow span joins the previous rect of its sub-row when it touches
 * it and is of the same kind, and vanishes into it when that rect already covers its pixels: so a
 * sub-row never needs many more rects than it has pixels, and zoomed out thousands of spans become
 * a few hundred rects.
 */
export function layoutRects(index: SpanIndex, rows: RowLayout, win: TimeWindow, widthPx: number): SpanRect[] {
  const out: SpanRect[] = [];
  const slot = new Map<string, number>(rows.rows.map((r, i) => [r.peerId, i]));
  // The latest rect of each sub-row: [2 * row] compute, [2 * row + 1] comm.
  const last: (SpanRect | undefined)[] = [];
  const scale = widthPx / (win.endMs - win.startMs);
  for (const s of visibleSpans(index, win)) {
    const i = slot.get(s.peerId);
    const row = i === undefined ? undefined : rows.rows[i];
    if (i === undefined || !row) continue;
    const x0 = Math.max(0, (s.startMs - win.startMs) * scale);
    const x1 = Math.min(widthPx, (s.startMs + s.durMs - win.startMs) * scale);
    const w = Math.max(1, x1 - x0);
    const k = 2 * i + (s.lane === 'compute' ? 0 : 1);
    const prev = last[k];
    if (prev && w < MERGE_BELOW_PX) {
      const prevEnd = prev.x + prev.w;
      if (x0 + w <= prevEnd + 0.5) {
        prev.count++; // inside pixels already painted
        continue;
      }
      if (prev.kind === s.kind && x0 <= prevEnd + 0.5) {
        prev.w = x0 + w - prev.x;
        prev.count++;
        continue;
      }
    }
    const { y, h } = laneY(row, s.lane);
    const rect: SpanRect = { x: x0, y, w, h, kind: s.kind, span: s, count: 1 };
    out.push(rect);
    last[k] = rect;
  }
  return out;
}

/** layoutRects remembering its last result: a redraw for hover alone reuses the rects. */
export function memoLayoutRects(): typeof layoutRects {
  let last: { index: SpanIndex; rows: RowLayout; start: number; end: number; width: number } | null = null;
  let rects: SpanRect[] = [];
  return (index, rows, win, widthPx) => {
    const same =
      last !== null &&
      last.index === index &&
      last.rows === rows &&
      last.start === win.startMs &&
      last.end === win.endMs &&
      last.width === widthPx;
    if (!same) {
      rects = layoutRects(index, rows, win, widthPx);
      last = { index, rows, start: win.startMs, end: win.endMs, width: widthPx };
    }
    return rects;
  };
}

/**
 * Short text drawn inside a span: F3 / B3 / S3 / R3 for micro-batch 3, or the kind. An interleaved
 * peer's later chunks take primes, as in the interleaved schedule's papers: F3′ is micro-batch 3's
 * forward through the peer's second chunk.
 */
export function spanLabel(s: TimelineSpan): string {
  const mb = s.microBatch === undefined ? '' : `${s.microBatch}${'′'.repeat(s.chunk ?? 0)}`;
  switch (s.kind) {
    case 'forward':
      return `F${mb}`;
    case 'backward':
      return `B${mb}`;
    case 'send':
      return `S${mb}`;
    case 'recv':
      return `R${mb}`;
    case 'optimizer':
      return 'opt';
    case 'allreduce':
      return 'AR';
    case 'reduceScatter':
      return 'RS';
    case 'allGather':
      return 'AG';
    case 'wait':
      return 'wait';
    case 'compute':
      return 'compute';
    case 'eval':
      return 'eval';
    case 'recovery':
      return 'recover';
    default: {
      const never: never = s.kind;
      return String(never);
    }
  }
}

/** Whether `label` fits in a rect `w` px wide (about 6.5 px per character at 11 px, plus padding). */
export function labelFits(label: string, w: number): boolean {
  return w >= label.length * 6.5 + 6;
}

// ---------------------------------------------------------------- hit test

/**
 * The span under (x, y) in plot coordinates, or within `slopPx` of x in that sub-row (thin spans
 * are hard to hit); the nearest wins. Null when none.
 */
export function spanAt(
  index: SpanIndex,
  rows: RowLayout,
  win: TimeWindow,
  widthPx: number,
  x: number,
  y: number,
  slopPx = 3,
): TimelineSpan | null {
  const row = rows.rows.find((r) => y >= r.computeY && y <= r.bottom);
  if (!row) return null;
  const lane: Lane = y < row.commY ? 'compute' : 'comm';
  const slopMs = (slopPx / widthPx) * (win.endMs - win.startMs);
  const t = xToTime(x, win, widthPx);
  let best: TimelineSpan | null = null;
  let bestDist = Infinity;
  for (const s of visibleSpans(index, { startMs: t - slopMs, endMs: t + slopMs })) {
    if (s.peerId !== row.peerId || s.lane !== lane) continue;
    const dist = t < s.startMs ? s.startMs - t : t > s.startMs + s.durMs ? t - s.startMs - s.durMs : 0;
    if (dist < bestDist) {
      best = s;
      bestDist = dist;
    }
  }
  return best;
}

// ---------------------------------------------------------------- time axis

/** The smallest 1, 2 or 5 x 10^k at or above `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const exp = Math.floor(Math.log10(raw));
  const base = 10 ** exp;
  const m = raw / base;
  // The small tolerance keeps an exact 2 or 5 from rounding up through float noise.
  const nice = m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10;
  return nice * base;
}

export interface Tick {
  x: number;
  label: string;
}

/** Tick label for `ms` after the origin, with as many decimals as the step needs. */
export function formatTick(ms: number, stepMs: number): string {
  if (stepMs >= 1000) {
    const digits = Math.max(0, -Math.floor(Math.log10(stepMs / 1000) + 1e-9));
    return `${(ms / 1000).toFixed(digits)} s`;
  }
  const digits = Math.max(0, -Math.floor(Math.log10(stepMs) + 1e-9));
  return `${ms.toFixed(digits)} ms`;
}

/** Ticks at least `minSpacingPx` apart, labelled in time since `originMs` (e.g. the run start). */
export function timeTicks(win: TimeWindow, widthPx: number, originMs: number, minSpacingPx = 90): Tick[] {
  if (widthPx <= 0) return [];
  const step = niceStep(((win.endMs - win.startMs) * minSpacingPx) / widthPx);
  const first = Math.ceil((win.startMs - originMs) / step);
  const ticks: Tick[] = [];
  for (let k = first; ; k++) {
    const rel = k * step;
    const x = timeToX(originMs + rel, win, widthPx);
    if (x > widthPx || ticks.length > 1000) break;
    ticks.push({ x, label: formatTick(rel, step) });
  }
  return ticks;
}

/** Start of each step (its earliest span) inside `win`, for the faint step lines. */
export function stepStarts(index: SpanIndex, win: TimeWindow): { step: number; startMs: number }[] {
  return index.steps.filter((s) => s.startMs >= win.startMs && s.startMs <= win.endMs);
}

/**
 * SVG polyline points for `values` in a `width` x `height` box, 0 at the bottom and `max` at the
 * top (values above are clipped); "" when there are none.
 */
export function sparkline(values: readonly number[], width: number, height: number, max: number): string {
  if (values.length === 0 || !(max > 0)) return '';
  const dx = values.length === 1 ? 0 : width / (values.length - 1);
  return values
    .map((v, i) => {
      const y = height - (Math.max(0, Math.min(max, v)) / max) * height;
      return `${(values.length === 1 ? width / 2 : i * dx).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}
