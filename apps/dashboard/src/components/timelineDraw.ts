import type { TimelineSpan } from '@peertrain/coordinator';
import {
  ROW,
  SPAN_STYLE,
  labelFits,
  spanLabel,
  stepStarts,
  timeTicks,
  timeToX,
  type RowLayout,
  type SpanRect,
  type SpanIndex,
  type TimeWindow,
} from '../timeline.ts';

// Paints one frame of the timeline on a 2D canvas. Everything it needs is in the scene; the
// layout math lives in ../timeline.ts. Called at most once per animation frame.

/** Left gutter for peer names, and air on the right, CSS px. */
export const GUTTER = 150;
export const RIGHT_PAD = 10;

export function plotWidth(cssWidth: number): number {
  return Math.max(1, cssWidth - GUTTER - RIGHT_PAD);
}

export interface RowLabel {
  name: string;
  /** Second line, e.g. "stage 1 · layers [3, 6)". */
  detail: string;
}

export interface TimelineScene {
  index: SpanIndex;
  rows: RowLayout;
  labels: ReadonlyMap<string, RowLabel>;
  win: TimeWindow;
  /** Canvas size in CSS px. */
  width: number;
  height: number;
  /** Tick labels count from here (the run start). */
  originMs: number;
  hover: TimelineSpan | null;
  /** layoutRects(index, rows, win, plotWidth(width)), computed (and cached) by the caller. */
  rects: readonly SpanRect[];
}

const INK = '#1b2230';
const MUTED = '#5b6472';
const LINE = '#dde2e9';
const BAND = '#f7f9fb';
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const FONT_BOLD = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

/** Draws the scene; the context is already scaled so that 1 unit = 1 CSS px. */
export function drawTimeline(ctx: CanvasRenderingContext2D, scene: TimelineScene): void {
  const { rows, win, width, height } = scene;
  const pw = plotWidth(width);
  ctx.clearRect(0, 0, width, height);
  ctx.textBaseline = 'middle';

  // Row bands and the comm sub-row's baseline.
  rows.rows.forEach((r, i) => {
    if (i % 2 === 0) {
      ctx.fillStyle = BAND;
      ctx.fillRect(0, r.computeY - ROW.gap / 2, width, r.bottom - r.computeY + ROW.gap);
    }
    ctx.fillStyle = LINE;
    ctx.fillRect(GUTTER, r.commY + ROW.comm - 0.5, pw, 0.5);
  });

  ctx.save();
  ctx.translate(GUTTER, 0);

  // Time grid and axis labels.
  ctx.font = FONT;
  ctx.textAlign = 'center';
  for (const t of timeTicks(win, pw, scene.originMs)) {
    ctx.fillStyle = LINE;
    ctx.fillRect(Math.round(t.x), ROW.axis - 4, 1, height - ROW.axis + 4);
    // A label cut by either edge of the plot is left out (its grid line stays).
    const half = ctx.measureText(t.label).width / 2;
    if (t.x - half < 0 || t.x + half > pw + RIGHT_PAD) continue;
    ctx.fillStyle = MUTED;
    ctx.fillText(t.label, t.x, ROW.axis / 2);
  }

  ctx.beginPath();
  ctx.rect(0, ROW.axis - 4, pw, height);
  ctx.clip();

  // Step boundaries: a dashed line and the step number, under the spans.
  ctx.setLineDash([3, 3]);
  ctx.strokeStyle = '#aab3c0';
  ctx.textAlign = 'left';
  for (const s of stepStarts(scene.index, win)) {
    const x = Math.round(timeToX(s.startMs, win, pw)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, ROW.axis - 2);
    ctx.lineTo(x, height);
    ctx.stroke();
    ctx.fillStyle = MUTED;
    ctx.fillText(`step ${s.step}`, x + 3, ROW.axis + 2);
  }
  ctx.setLineDash([]);

  // The spans. Wide ones get a thin white edge so back-to-back micro-batches stay apart.
  const rects = scene.rects;
  for (const r of rects) {
    const style = SPAN_STYLE[r.kind];
    ctx.fillStyle = style.fill;
    ctx.fillRect(r.x, r.y, r.w, r.h);
    if ((r.span.chunk ?? 0) > 0) {
      // An interleaved peer's later chunks: a lighter shade of the kind's colour.
      ctx.fillStyle = 'rgba(255,255,255,0.4)';
      ctx.fillRect(r.x, r.y, r.w, r.h);
    }
    if (r.w >= 4) {
      ctx.fillStyle = 'rgba(255,255,255,0.85)';
      ctx.fillRect(r.x, r.y, 1, r.h);
    }
  }
  ctx.font = FONT;
  ctx.textAlign = 'center';
  for (const r of rects) {
    if (r.count !== 1 || r.h < ROW.compute) continue;
    const label = spanLabel(r.span);
    if (!labelFits(label, r.w)) continue;
    ctx.fillStyle = SPAN_STYLE[r.kind].text;
    ctx.fillText(label, r.x + r.w / 2, r.y + r.h / 2 + 0.5);
  }

  // The hovered span, outlined.
  const hover = scene.hover;
  if (hover) {
    const row = rows.byPeer.get(hover.peerId);
    if (row) {
      const x0 = timeToX(hover.startMs, win, pw);
      const w = Math.max(1, timeToX(hover.startMs + hover.durMs, win, pw) - x0);
      const y = hover.lane === 'compute' ? row.computeY : row.commY;
      const h = hover.lane === 'compute' ? ROW.compute : ROW.comm;
      ctx.strokeStyle = INK;
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 1, y - 1, w + 2, h + 2);
      ctx.lineWidth = 1;
    }
  }
  ctx.restore();

  // Gutter: peer names over the bands, lane names small on the right.
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, GUTTER - 6, ROW.axis - 4);
  ctx.textAlign = 'left';
  for (const r of rows.rows) {
    const label = scene.labels.get(r.peerId) ?? { name: r.peerId, detail: '' };
    ctx.fillStyle = INK;
    ctx.font = FONT_BOLD;
    ctx.fillText(ellipsize(ctx, label.name, GUTTER - 58), 8, r.computeY + ROW.compute / 2);
    ctx.fillStyle = MUTED;
    ctx.font = FONT;
    ctx.fillText(ellipsize(ctx, label.detail, GUTTER - 50), 8, r.commY + ROW.comm / 2 + 1);
    ctx.textAlign = 'right';
    ctx.fillStyle = '#8a93a1';
    ctx.font = '9px system-ui, sans-serif';
    ctx.fillText('compute', GUTTER - 6, r.computeY + ROW.compute / 2);
    ctx.fillText('comm', GUTTER - 6, r.commY + ROW.comm / 2);
    ctx.textAlign = 'left';
  }
}

/** `text` cut with an ellipsis to fit `maxPx` in the current font. */
function ellipsize(ctx: CanvasRenderingContext2D, text: string, maxPx: number): string {
  if (ctx.measureText(text).width <= maxPx) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(`${t}…`).width > maxPx) t = t.slice(0, -1);
  return `${t}…`;
}
