import { describe, expect, it } from 'vitest';
import type { TimelineSpan } from '@peertrain/coordinator';
import { SPAN_KINDS } from '@peertrain/protocol';
import {
  LEGEND_KINDS,
  MAX_WINDOW_MS,
  MIN_WINDOW_MS,
  ROW,
  SPAN_STYLE,
  fitWindow,
  formatTick,
  indexSpans,
  labelFits,
  layoutRects,
  layoutRows,
  memoLayoutRects,
  liveWindow,
  niceStep,
  panBy,
  peerOrder,
  spanAt,
  spanLabel,
  sparkline,
  stepStarts,
  timeTicks,
  timeToX,
  visibleSpans,
  wheelFactor,
  xToTime,
  zoomAt,
  type TimeWindow,
} from './timeline.ts';
import { stagePeer, syntheticGpipe } from './timeline.fixture.ts';

const span = (patch: Partial<TimelineSpan> & Pick<TimelineSpan, 'startMs' | 'durMs'>): TimelineSpan => ({
  peerId: 'a',
  kind: 'forward',
  step: 0,
  lane: 'compute',
  ...patch,
});

/** Every visible span by brute force, for checking the binary-searched culling. */
const bruteVisible = (spans: readonly TimelineSpan[], w: TimeWindow): TimelineSpan[] =>
  spans.filter((s) => s.startMs <= w.endMs && s.startMs + s.durMs >= w.startMs);

describe('time <-> x', () => {
  const win = { startMs: 100, endMs: 300 };
  it('maps the window onto the width and back', () => {
    expect(timeToX(100, win, 800)).toBe(0);
    expect(timeToX(300, win, 800)).toBe(800);
    expect(timeToX(150, win, 800)).toBe(200);
    expect(xToTime(200, win, 800)).toBe(150);
    expect(xToTime(timeToX(123.4, win, 800), win, 800)).toBeCloseTo(123.4, 9);
  });

  it('zooms around the anchor, which keeps its place on screen', () => {
    const z = zoomAt(win, 150, 0.5);
    expect(z.endMs - z.startMs).toBeCloseTo(100, 9);
    expect(timeToX(150, z, 800)).toBeCloseTo(timeToX(150, win, 800), 9);
    const out = zoomAt(z, 150, 2);
    expect(out.startMs).toBeCloseTo(win.startMs, 9);
    expect(out.endMs).toBeCloseTo(win.endMs, 9);
  });

  it('clamps the zoom between its limits', () => {
    const tiny = zoomAt(win, 200, 1e-9);
    expect(tiny.endMs - tiny.startMs).toBeCloseTo(MIN_WINDOW_MS, 9);
    expect(tiny.startMs).toBeLessThanOrEqual(200);
    expect(tiny.endMs).toBeGreaterThanOrEqual(200);
    const huge = zoomAt(win, 200, 1e9);
    expect(huge.endMs - huge.startMs).toBe(MAX_WINDOW_MS);
  });

  it('turns wheel deltas into zoom factors: down zooms out, up zooms in, lines like pixels', () => {
    expect(wheelFactor(100, 0)).toBeGreaterThan(1);
    expect(wheelFactor(-100, 0)).toBeLessThan(1);
    expect(wheelFactor(100, 0) * wheelFactor(-100, 0)).toBeCloseTo(1, 12);
    expect(wheelFactor(3, 1)).toBeCloseTo(wheelFactor(99, 0), 12);
    // One huge event cannot jump past a sane step.
    expect(wheelFactor(1e6, 0)).toBe(wheelFactor(300, 0));
  });

  it('pans by pixels: dragging right goes back in time', () => {
    const p = panBy(win, 200, 800);
    expect(p).toEqual({ startMs: 50, endMs: 250 });
    expect(panBy(p, -200, 800)).toEqual(win);
  });
});

describe('span index and culling', () => {
  const { spans } = syntheticGpipe({ stages: 4, microBatches: 8, steps: 5 });
  const index = indexSpans([...spans].reverse());

  it('sorts by start and knows the extent, longest span and last step', () => {
    for (let i = 1; i < index.spans.length; i++) {
      expect(index.spans[i]!.startMs).toBeGreaterThanOrEqual(index.spans[i - 1]!.startMs);
    }
    expect(index.maxDurMs).toBe(8);
    expect(index.lastStep).toBe(4);
    expect(index.extent?.startMs).toBe(1000);
    const end = Math.max(...spans.map((s) => s.startMs + s.durMs));
    expect(index.extent?.endMs).toBe(end);
    expect(indexSpans([])).toEqual({ spans: [], maxDurMs: 0, extent: null, lastStep: -1, steps: [] });
    expect(index.steps.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('returns exactly the spans that overlap the window, including long ones that began before it', () => {
    const e = index.extent!;
    for (const [a, b] of [
      [0, 1],
      [0.1, 0.15],
      [0.5, 0.5001],
      [0.99, 1.2],
      [-1, -0.5],
    ] as const) {
      const w = {
        startMs: e.startMs + a * (e.endMs - e.startMs),
        endMs: e.startMs + b * (e.endMs - e.startMs),
      };
      const got = visibleSpans(index, w);
      expect(new Set(got)).toEqual(new Set(bruteVisible(spans, w)));
    }
    // A long span that starts well before the window still shows.
    const long = indexSpans([span({ startMs: 0, durMs: 100 }), span({ startMs: 90, durMs: 1 })]);
    expect(visibleSpans(long, { startMs: 50, endMs: 60 })).toHaveLength(1);
  });
});

describe('windows', () => {
  const { spans } = syntheticGpipe({ stages: 2, microBatches: 2, steps: 6 });
  const index = indexSpans(spans);

  it('fits everything with a little air', () => {
    const w = fitWindow(index)!;
    expect(w.startMs).toBeLessThan(index.extent!.startMs);
    expect(w.endMs).toBeGreaterThan(index.extent!.endMs);
    expect(fitWindow(indexSpans([]))).toBeNull();
  });

  it('follows the last steps', () => {
    const w = liveWindow(index, 3)!;
    const firstOfStep3 = Math.min(...spans.filter((s) => s.step === 3).map((s) => s.startMs));
    expect(w.startMs).toBe(firstOfStep3);
    expect(w.endMs).toBeGreaterThan(index.extent!.endMs);
    // Steps 0-2 are left of the window, step 3 onwards inside.
    expect(spans.filter((s) => s.step < 3).every((s) => s.startMs + s.durMs <= w.startMs)).toBe(true);
    // Fewer steps than asked for: everything.
    expect(liveWindow(index, 50)!.startMs).toBe(index.extent!.startMs);
    expect(liveWindow(indexSpans([]))).toBeNull();
  });
});

describe('rows', () => {
  it('orders pipeline peers by replica then stage, then the others by id', () => {
    const { spans, pipeline } = syntheticGpipe({ stages: 3, microBatches: 2, steps: 1 });
    const shuffled = {
      ...pipeline,
      assignments: [
        { peerId: 'r1s0', stage: 0, replica: 1, first: 0, end: 3 },
        { peerId: 'r0s1', stage: 1, replica: 0, first: 3, end: 6 },
        { peerId: 'r0s0', stage: 0, replica: 0, first: 0, end: 3 },
      ],
    };
    expect(peerOrder(spans, shuffled)).toEqual([
      'r0s0',
      'r0s1',
      'r1s0',
      stagePeer(0),
      stagePeer(1),
      stagePeer(2),
    ]);
    expect(peerOrder(spans, null)).toEqual([stagePeer(0), stagePeer(1), stagePeer(2)]);
  });

  it('stacks a compute and a comm sub-row per peer under the axis', () => {
    const l = layoutRows(['a', 'b']);
    const [a, b] = l.rows;
    expect(a!.computeY).toBeGreaterThanOrEqual(ROW.axis);
    expect(a!.commY).toBe(a!.computeY + ROW.compute + ROW.subGap);
    expect(a!.bottom).toBe(a!.commY + ROW.comm);
    expect(b!.computeY).toBe(a!.bottom + ROW.gap);
    expect(l.height).toBeGreaterThan(b!.bottom);
    expect(l.byPeer.get('b')).toBe(b);
  });
});

describe('rects', () => {
  const rows = layoutRows(['a', 'b']);

  it('places spans in their peer row and lane, clipped to the plot', () => {
    const index = indexSpans([
      span({ startMs: 10, durMs: 10 }),
      span({ peerId: 'b', kind: 'send', lane: 'comm', startMs: 20, durMs: 5 }),
      span({ startMs: -50, durMs: 100 }),
      span({ peerId: 'stranger', startMs: 10, durMs: 10 }),
    ]);
    const rects = layoutRects(index, rows, { startMs: 0, endMs: 100 }, 1000);
    expect(rects).toHaveLength(3);
    const [long, f, s] = rects;
    expect(long).toMatchObject({ x: 0, w: 500, y: rows.rows[0]!.computeY, h: ROW.compute });
    expect(f).toMatchObject({ x: 100, w: 100, kind: 'forward', count: 1 });
    expect(s).toMatchObject({ x: 200, w: 50, y: rows.rows[1]!.commY, h: ROW.comm, kind: 'send' });
  });

  it('keeps tiny spans visible (1 px) and merges touching tiny ones of a kind', () => {
    // 1000 sends of 1 µs, 1 µs apart, over 2 ms in a 100 px plot (20 µs per px).
    const tiny = Array.from({ length: 1000 }, (_, i) =>
      span({ kind: 'send', lane: 'comm', startMs: i * 0.002, durMs: 0.001 }),
    );
    const rects = layoutRects(indexSpans(tiny), rows, { startMs: 0, endMs: 2 }, 100);
    expect(rects.length).toBe(1);
    expect(rects[0]!.count).toBe(1000);
    expect(rects[0]!.w).toBeGreaterThan(99);
    // Zoomed in, they separate again.
    const near = layoutRects(indexSpans(tiny), rows, { startMs: 0, endMs: 0.02 }, 1000);
    expect(near.length).toBe(11);
    expect(near.every((r) => r.count === 1 && r.w >= 1)).toBe(true);
  });

  it('drops narrow spans of any kind into pixels already painted in their sub-row', () => {
    // Interleaved sends and receives 10 µs apart over 20 ms, at 1 ms per px: at most two rects a pixel.
    const mixed = Array.from({ length: 2000 }, (_, i) =>
      span({ kind: i % 2 === 0 ? 'send' : 'recv', lane: 'comm', startMs: i * 0.01, durMs: 0.005 }),
    );
    const rects = layoutRects(indexSpans(mixed), rows, { startMs: 0, endMs: 100 }, 100);
    expect(rects.length).toBeLessThanOrEqual(2 * 20 + 1);
    expect(rects.reduce((n, r) => n + r.count, 0)).toBe(2000);
  });

  it('reuses the rects while nothing they depend on changed', () => {
    const index = indexSpans([span({ startMs: 10, durMs: 10 })]);
    const layout = memoLayoutRects();
    const a = layout(index, rows, { startMs: 0, endMs: 100 }, 100);
    expect(layout(index, rows, { startMs: 0, endMs: 100 }, 100)).toBe(a);
    expect(layout(index, rows, { startMs: 0, endMs: 50 }, 100)).not.toBe(a);
    expect(layout(index, rows, { startMs: 0, endMs: 50 }, 200)[0]!.w).toBe(40);
    expect(
      layout(indexSpans([span({ startMs: 10, durMs: 10 })]), rows, { startMs: 0, endMs: 50 }, 200),
    ).toHaveLength(1);
  });

  it('does not merge different kinds, different rows or wide spans', () => {
    const index = indexSpans([
      span({ startMs: 0, durMs: 0.001 }),
      span({ kind: 'backward', startMs: 5, durMs: 0.001 }),
      span({ peerId: 'b', startMs: 0.002, durMs: 0.001 }),
      span({ startMs: 10, durMs: 10 }),
      span({ startMs: 20, durMs: 10 }),
    ]);
    expect(layoutRects(index, rows, { startMs: 0, endMs: 100 }, 100)).toHaveLength(5);
  });
});

describe('labels and hit test', () => {
  it('labels spans by kind and micro-batch', () => {
    expect(spanLabel(span({ startMs: 0, durMs: 1, microBatch: 3 }))).toBe('F3');
    // an interleaved peer's second chunk
    expect(spanLabel(span({ startMs: 0, durMs: 1, microBatch: 3, chunk: 1 }))).toBe('F3′');
    expect(spanLabel(span({ startMs: 0, durMs: 1, microBatch: 3, chunk: 0 }))).toBe('F3');
    expect(spanLabel(span({ kind: 'backward', startMs: 0, durMs: 1, microBatch: 0 }))).toBe('B0');
    expect(spanLabel(span({ kind: 'send', startMs: 0, durMs: 1, microBatch: 12 }))).toBe('S12');
    expect(spanLabel(span({ kind: 'allreduce', startMs: 0, durMs: 1 }))).toBe('AR');
    expect(spanLabel(span({ kind: 'reduceScatter', startMs: 0, durMs: 1 }))).toBe('RS');
    expect(spanLabel(span({ kind: 'allGather', startMs: 0, durMs: 1 }))).toBe('AG');
    expect(labelFits('F3', 19)).toBe(true);
    expect(labelFits('F3', 12)).toBe(false);
  });

  it('has a style and a legend entry for every span kind', () => {
    expect(new Set(LEGEND_KINDS)).toEqual(new Set(SPAN_KINDS));
    for (const k of SPAN_KINDS) expect(SPAN_STYLE[k].fill).toMatch(/^#[0-9a-f]{6}$/);
  });

  it('finds the span under the pointer, or the nearest within the slop', () => {
    const rows = layoutRows(['a']);
    const fwd = span({ startMs: 10, durMs: 10 });
    const send = span({ kind: 'send', lane: 'comm', startMs: 30, durMs: 0.01 });
    const index = indexSpans([fwd, send]);
    const win = { startMs: 0, endMs: 100 };
    const row = rows.rows[0]!;
    expect(spanAt(index, rows, win, 1000, 150, row.computeY + 5)).toBe(fwd);
    expect(spanAt(index, rows, win, 1000, 150, row.commY + 2)).toBeNull();
    // 2 px right of a 0.1 px send: still hit.
    expect(spanAt(index, rows, win, 1000, 302, row.commY + 2)).toBe(send);
    expect(spanAt(index, rows, win, 1000, 310, row.commY + 2)).toBeNull();
    expect(spanAt(index, rows, win, 1000, 150, 0)).toBeNull();
  });
});

describe('time axis', () => {
  it('rounds steps up to 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(0.7)).toBe(1);
    expect(niceStep(1)).toBe(1);
    expect(niceStep(1.2)).toBe(2);
    expect(niceStep(3)).toBe(5);
    expect(niceStep(7)).toBe(10);
    expect(niceStep(0.02)).toBeCloseTo(0.02, 12);
    expect(niceStep(450)).toBe(500);
    expect(niceStep(0)).toBe(1);
  });

  it('formats ticks with the decimals the step needs', () => {
    expect(formatTick(20, 10)).toBe('20 ms');
    expect(formatTick(0.5, 0.5)).toBe('0.5 ms');
    expect(formatTick(0.25, 0.05)).toBe('0.25 ms');
    expect(formatTick(2000, 1000)).toBe('2 s');
    expect(formatTick(2500, 500)).toBe('2500 ms');
    expect(formatTick(12_200, 200 * 10)).toBe('12 s');
  });

  it('puts ticks at round times since the origin, spaced at least the minimum', () => {
    const ticks = timeTicks({ startMs: 1003, endMs: 1107 }, 1000, 1000, 90);
    expect(ticks.map((t) => t.label)).toEqual([
      '10 ms',
      '20 ms',
      '30 ms',
      '40 ms',
      '50 ms',
      '60 ms',
      '70 ms',
      '80 ms',
      '90 ms',
      '100 ms',
    ]);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.x - ticks[i - 1]!.x).toBeGreaterThanOrEqual(90);
    expect(ticks[0]!.x).toBeCloseTo(timeToX(1010, { startMs: 1003, endMs: 1107 }, 1000), 9);
    expect(timeTicks({ startMs: 0, endMs: 1 }, 0, 0)).toEqual([]);
  });
});

describe('step lines and sparkline', () => {
  it('finds where each step starts inside the window', () => {
    const index = indexSpans([
      span({ step: 1, startMs: 50, durMs: 5 }),
      span({ step: 0, startMs: 0, durMs: 40 }),
      span({ step: 1, startMs: 45, durMs: 5, peerId: 'b' }),
      span({ step: 2, startMs: 90, durMs: 5 }),
    ]);
    expect(stepStarts(index, { startMs: 10, endMs: 100 })).toEqual([
      { step: 1, startMs: 45 },
      { step: 2, startMs: 90 },
    ]);
  });

  it('draws values bottom-up in the box, clipped to the maximum', () => {
    expect(sparkline([0, 0.5, 1, 2], 30, 10, 1)).toBe('0.0,10.0 10.0,5.0 20.0,0.0 30.0,0.0');
    expect(sparkline([0.25], 30, 10, 1)).toBe('15.0,7.5');
    expect(sparkline([], 30, 10, 1)).toBe('');
  });
});
