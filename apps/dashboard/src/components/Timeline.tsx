import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { SpanKind } from '@peertrain/protocol';
import type { PeerView, PipelineView, TimelineSpan } from '@peertrain/coordinator';
import { animationFrames, formatBytes, formatMs } from '@peertrain/ui';
import { layersText, roleText, shortPeerId, stageBadge } from '../peerLabels.ts';
import {
  LEGEND_KINDS,
  LIVE_STEPS,
  SPAN_STYLE,
  fitWindow,
  indexSpans,
  layoutRows,
  liveWindow,
  memoLayoutRects,
  panBy,
  peerOrder,
  spanAt,
  spanLabel,
  wheelFactor,
  xToTime,
  zoomAt,
  type RowLayout,
  type SpanIndex,
  type TimeWindow,
} from '../timeline.ts';
import { GUTTER, drawTimeline, plotWidth, type RowLabel } from './timelineDraw.ts';
import { BubbleStats } from './BubbleStats.tsx';

/** Height of the canvas with no rows yet: the axis and room for the "no spans" note. */
const EMPTY_HEIGHT = 90;

/** Row names: the short peer id, and its stage and layers (or its role). */
function rowLabels(
  order: readonly string[],
  peers: readonly PeerView[],
  pipeline: PipelineView | null,
  room: string,
): Map<string, RowLabel> {
  const byId = new Map(peers.map((p) => [p.peerId, p]));
  const places = new Map(pipeline?.assignments.map((a) => [a.peerId, a]) ?? []);
  return new Map(
    order.map((id) => {
      const place = places.get(id) ?? byId.get(id)?.stage ?? null;
      const peer = byId.get(id);
      const detail = place
        ? `${stageBadge(place, pipeline?.replicas ?? 1)} · ${layersText(place)}`
        : ((peer && roleText(peer)) ?? '');
      return [id, { name: shortPeerId(id, room), detail }];
    }),
  );
}

function presentKinds(spans: readonly TimelineSpan[]): SpanKind[] {
  const seen = new Set<SpanKind>();
  for (const s of spans) seen.add(s.kind);
  return LEGEND_KINDS.filter((k) => seen.has(k));
}

/** What the painter reads: kept in a ref so pointer events and frames never wait for React. */
interface PaintState {
  index: SpanIndex;
  rows: RowLayout;
  labels: ReadonlyMap<string, RowLabel>;
  originMs: number;
  win: TimeWindow | null;
  follow: boolean;
  width: number;
  hover: TimelineSpan | null;
}

interface Hover {
  span: TimelineSpan;
  /** Pointer position in the canvas box, CSS px. */
  x: number;
  y: number;
  /** Width of the box then, to keep the tip inside it. */
  boxWidth: number;
}

/**
 * The live timeline: one row per peer (compute above, communication below), spans coloured by kind
 * on the coordinator's clock. Drag pans, the wheel zooms around the pointer, double-click fits;
 * "follow live" keeps the last steps in view. Drawn on a canvas, at most once per animation frame.
 */
export function Timeline(props: {
  spans: readonly TimelineSpan[];
  pipeline: PipelineView | null;
  peers: readonly PeerView[];
  room: string;
  /** Run start on the coordinator's clock: the time axis counts from here. */
  originMs: number | null;
}) {
  const { spans, pipeline, peers, room } = props;
  const index = useMemo(() => indexSpans(spans), [spans]);
  const order = useMemo(() => peerOrder(spans, pipeline), [spans, pipeline]);
  const rows = useMemo(() => layoutRows(order), [order]);
  const labels = useMemo(() => rowLabels(order, peers, pipeline, room), [order, peers, pipeline, room]);
  const kinds = useMemo(() => presentKinds(spans), [spans]);
  const chunked = useMemo(() => spans.some((s) => (s.chunk ?? 0) > 0), [spans]);
  const originMs = props.originMs ?? index.extent?.startMs ?? 0;
  const height = rows.rows.length > 0 ? rows.height : EMPTY_HEIGHT;

  const [follow, setFollow] = useState(true);
  const [hover, setHover] = useState<Hover | null>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const paint = useRef<PaintState>({
    index,
    rows,
    labels,
    originMs,
    win: null,
    follow: true,
    width: 0,
    hover: null,
  });
  /** Asks for one frame; several asks before it runs still draw once. */
  const requestDraw = useRef<() => void>(() => undefined);

  // Canvas, painter and input: set up once.
  useEffect(() => {
    const canvas = canvasRef.current;
    const box = boxRef.current;
    if (!canvas || !box) return;
    const s = paint.current;
    let frame: number | null = null;
    const layoutRects = memoLayoutRects();
    const draw = (): void => {
      frame = null;
      const ctx = canvas.getContext('2d');
      if (!ctx || s.width <= 0) return;
      const cssH = s.rows.rows.length > 0 ? s.rows.height : EMPTY_HEIGHT;
      const dpr = window.devicePixelRatio || 1;
      const w = Math.round(s.width * dpr);
      const h = Math.round(cssH * dpr);
      if (canvas.width !== w) canvas.width = w;
      if (canvas.height !== h) canvas.height = h;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      if (!s.win) {
        ctx.clearRect(0, 0, s.width, cssH);
        return;
      }
      const rects = layoutRects(s.index, s.rows, s.win, plotWidth(s.width));
      drawTimeline(ctx, { ...s, win: s.win, height: cssH, rects });
    };
    const request = (): void => {
      frame ??= animationFrames.request(draw);
    };
    requestDraw.current = request;

    const resize = new ResizeObserver(() => {
      s.width = box.clientWidth;
      request();
    });
    resize.observe(box);

    const stopFollowing = (): void => {
      s.follow = false;
      setFollow(false);
    };
    const local = (e: MouseEvent): { x: number; y: number } => {
      const r = canvas.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    const setHoverTo = (span: TimelineSpan | null, at: { x: number; y: number }): void => {
      if (span === s.hover) return;
      s.hover = span;
      setHover(span ? { span, ...at, boxWidth: s.width } : null);
      request();
    };

    let drag: { x: number; win: TimeWindow; moved: boolean } | null = null;
    const onDown = (e: PointerEvent): void => {
      if (e.button !== 0 || !s.win) return;
      canvas.setPointerCapture(e.pointerId);
      drag = { x: e.clientX, win: s.win, moved: false };
    };
    const onMove = (e: PointerEvent): void => {
      const at = local(e);
      if (drag) {
        const dx = e.clientX - drag.x;
        if (!drag.moved && Math.abs(dx) < 3) return; // a click, not a drag
        drag.moved = true;
        stopFollowing();
        s.win = panBy(drag.win, dx, plotWidth(s.width));
        setHoverTo(null, at);
        request();
        return;
      }
      const x = at.x - GUTTER;
      const hit = s.win && x >= 0 ? spanAt(s.index, s.rows, s.win, plotWidth(s.width), x, at.y) : null;
      setHoverTo(hit, at);
    };
    const onUp = (e: PointerEvent): void => {
      if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
      drag = null;
    };
    const onLeave = (e: PointerEvent): void => {
      if (!drag) setHoverTo(null, local(e));
    };
    const onWheel = (e: WheelEvent): void => {
      if (!s.win) return;
      e.preventDefault(); // the page must not scroll while the timeline zooms
      stopFollowing();
      const pw = plotWidth(s.width);
      if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        s.win = panBy(s.win, -e.deltaX, pw);
      } else {
        const x = Math.min(pw, Math.max(0, local(e).x - GUTTER));
        s.win = zoomAt(s.win, xToTime(x, s.win, pw), wheelFactor(e.deltaY, e.deltaMode));
      }
      request();
    };
    const onDoubleClick = (): void => {
      stopFollowing();
      s.win = fitWindow(s.index) ?? s.win;
      request();
    };
    const onKey = (e: KeyboardEvent): void => {
      if (!s.win) return;
      const pw = plotWidth(s.width);
      const mid = (s.win.startMs + s.win.endMs) / 2;
      const next: Partial<Record<string, () => TimeWindow | null>> = {
        ArrowLeft: () => (s.win ? panBy(s.win, pw / 8, pw) : null),
        ArrowRight: () => (s.win ? panBy(s.win, -pw / 8, pw) : null),
        '+': () => (s.win ? zoomAt(s.win, mid, 0.8) : null),
        '=': () => (s.win ? zoomAt(s.win, mid, 0.8) : null),
        '-': () => (s.win ? zoomAt(s.win, mid, 1.25) : null),
        '0': () => fitWindow(s.index),
      };
      const move = next[e.key];
      if (!move) return;
      e.preventDefault();
      stopFollowing();
      s.win = move() ?? s.win;
      request();
    };

    canvas.addEventListener('pointerdown', onDown);
    canvas.addEventListener('pointermove', onMove);
    canvas.addEventListener('pointerup', onUp);
    canvas.addEventListener('pointercancel', onUp);
    canvas.addEventListener('pointerleave', onLeave);
    canvas.addEventListener('wheel', onWheel, { passive: false });
    canvas.addEventListener('dblclick', onDoubleClick);
    canvas.addEventListener('keydown', onKey);
    return () => {
      resize.disconnect();
      canvas.removeEventListener('pointerdown', onDown);
      canvas.removeEventListener('pointermove', onMove);
      canvas.removeEventListener('pointerup', onUp);
      canvas.removeEventListener('pointercancel', onUp);
      canvas.removeEventListener('pointerleave', onLeave);
      canvas.removeEventListener('wheel', onWheel);
      canvas.removeEventListener('dblclick', onDoubleClick);
      canvas.removeEventListener('keydown', onKey);
      if (frame !== null) animationFrames.cancel(frame);
      requestDraw.current = () => undefined;
    };
  }, []);

  // New data (at most once a frame: the view is frame-throttled): follow it, or keep the window.
  useEffect(() => {
    const s = paint.current;
    Object.assign(s, { index, rows, labels, originMs });
    if (s.follow) s.win = liveWindow(index) ?? s.win;
    else s.win ??= fitWindow(index);
    if (s.hover && !index.spans.includes(s.hover)) {
      s.hover = null;
      setHover(null);
    }
    requestDraw.current();
  }, [index, rows, labels, originMs]);

  const setWindow = (follow: boolean, win: (s: PaintState) => TimeWindow | null): void => {
    const s = paint.current;
    s.follow = follow;
    setFollow(follow);
    s.win = win(s) ?? s.win;
    requestDraw.current();
  };
  const zoom = (factor: number): void =>
    setWindow(false, (s) => (s.win ? zoomAt(s.win, (s.win.startMs + s.win.endMs) / 2, factor) : null));

  return (
    <section className="card timeline-card">
      <div className="card-head">
        <h2>
          Timeline{' '}
          <span className="muted">
            {spans.length.toLocaleString('en-US')} spans
            {index.lastStep >= 0 ? ` · up to step ${index.lastStep}` : ''}
          </span>
        </h2>
        <div className="timeline-tools" role="toolbar" aria-label="timeline view">
          <button
            type="button"
            className={follow ? 'toggle on' : 'toggle'}
            aria-pressed={follow}
            onClick={() => setWindow(!follow, (s) => (!follow ? liveWindow(s.index) : s.win))}
            title={`keep the last ${LIVE_STEPS} steps in view`}
          >
            <span className="live-dot" aria-hidden /> Follow live
          </button>
          <button
            type="button"
            onClick={() => setWindow(false, (s) => fitWindow(s.index))}
            title="show all (0)"
          >
            Fit
          </button>
          <button type="button" onClick={() => zoom(1 / 1.5)} aria-label="zoom in" title="zoom in (+)">
            +
          </button>
          <button type="button" onClick={() => zoom(1.5)} aria-label="zoom out" title="zoom out (−)">
            −
          </button>
        </div>
      </div>
      <div className="timeline-body">
        <div className="timeline-box" ref={boxRef}>
          <canvas
            ref={canvasRef}
            className="timeline-canvas"
            style={{ height }}
            tabIndex={0}
            role="img"
            aria-label={`timeline of ${order.length} peers, ${spans.length} spans`}
          />
          {spans.length === 0 && (
            <p className="timeline-empty muted">No spans yet: they appear as the first steps finish.</p>
          )}
          {hover && <SpanTip hover={hover} originMs={originMs} room={room} />}
        </div>
        <aside className="timeline-side">
          {pipeline && <BubbleStats pipeline={pipeline} />}
          <Legend kinds={kinds.length > 0 ? kinds : LEGEND_KINDS} chunked={chunked} />
        </aside>
      </div>
      <p className="muted small hint">
        Drag to pan · wheel to zoom at the pointer · double-click to fit · rows: compute above, communication
        below; time since the run started.
      </p>
    </section>
  );
}

function Legend(props: { kinds: readonly SpanKind[]; chunked: boolean }) {
  return (
    <ul className="legend" aria-label="span kinds">
      {props.kinds.map((k) => (
        <li key={k}>
          <span className="swatch" style={{ background: SPAN_STYLE[k].fill }} />
          {SPAN_STYLE[k].name}
        </li>
      ))}
      {props.chunked && (
        <li key="chunk" title="lighter: the op ran through the peer's second chunk of layers">
          <span className="swatch" style={{ background: SPAN_STYLE.forward.fill, opacity: 0.6 }} />
          2nd chunk (F3′)
        </li>
      )}
    </ul>
  );
}

function SpanTip(props: { hover: Hover; originMs: number; room: string }) {
  const { span: s, x, y, boxWidth } = props.hover;
  const rows: [string, ReactNode][] = [
    ['peer', shortPeerId(s.peerId, props.room)],
    [
      'step',
      (s.microBatch === undefined ? String(s.step) : `${s.step} · micro-batch ${s.microBatch}`) +
        (s.chunk === undefined ? '' : ` · chunk ${s.chunk}`),
    ],
    ['start', `+${formatMs(s.startMs - props.originMs)}`],
    ['duration', formatMs(s.durMs)],
  ];
  if (s.peer !== undefined) rows.push([s.kind === 'recv' ? 'from' : 'to', shortPeerId(s.peer, props.room)]);
  if (s.bytes !== undefined) {
    const rate = s.durMs > 0 ? `${formatBytes((s.bytes / s.durMs) * 1000)}/s` : '';
    rows.push(['bytes', `${formatBytes(s.bytes)}${rate ? ` · ${rate}` : ''}`]);
  }
  // Keep the tip inside the box: flip to the left of the pointer near the right edge.
  const left = x + 240 > boxWidth ? Math.max(0, x - 232) : x + 14;
  return (
    <div className="timeline-tip" style={{ left, top: y + 14 }} role="tooltip">
      <div className="tip-head">
        <span className="swatch" style={{ background: SPAN_STYLE[s.kind].fill }} />
        <strong>{SPAN_STYLE[s.kind].name}</strong> <span className="mono muted">{spanLabel(s)}</span>
      </div>
      <dl>
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}
