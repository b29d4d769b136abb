import type { PipelineView, TimelineSpan } from '@peertrain/coordinator';

// The topology view's pure half: who sends to whom and how fast (from the send spans of the
// timeline window), where each peer sits, and the curve of each edge. components/Topology.tsx
// draws the result as SVG.

export interface Link {
  from: string;
  to: string;
  /** Payload bytes of the send spans from -> to in the window. */
  bytes: number;
  /** bytes over the window's duration. */
  bytesPerSec: number;
  sends: number;
}

/**
 * One link per (sender, receiver) pair with send spans that name their `peer` and carry `bytes`;
 * the rate divides by the duration of the whole spans window (earliest start to latest end of any
 * span), so every link is measured over the same time. Sorted by rate, fastest first.
 */
export function linkRates(spans: readonly TimelineSpan[]): Link[] {
  let start = Infinity;
  let end = -Infinity;
  const links = new Map<string, Link>();
  for (const s of spans) {
    start = Math.min(start, s.startMs);
    end = Math.max(end, s.startMs + s.durMs);
    if (s.kind !== 'send' || s.peer === undefined || s.bytes === undefined) continue;
    const key = `${s.peerId}\u0000${s.peer}`;
    const link = links.get(key) ?? { from: s.peerId, to: s.peer, bytes: 0, bytesPerSec: 0, sends: 0 };
    link.bytes += s.bytes;
    link.sends++;
    links.set(key, link);
  }
  const seconds = (end - start) / 1000;
  const out = [...links.values()];
  for (const l of out) l.bytesPerSec = seconds > 0 ? l.bytes / seconds : 0;
  return out.sort((a, b) => b.bytesPerSec - a.bytesPerSec || a.from.localeCompare(b.from));
}

export interface NodePlace {
  peerId: string;
  x: number;
  y: number;
}

export interface NodeLayout {
  nodes: NodePlace[];
  /** The height the layout needs at the given width. */
  height: number;
}

/** Closest two node centres may come (a node is about 34 px wide with its name under it). */
export const NODE_SPACING = 60;
/** Vertical distance between rows of a pipeline grid. */
export const ROW_SPACING = 72;

/**
 * Where each peer sits in a box `width` wide. A pipeline is a grid: stage left to right, replica
 * top to bottom (activations flow right, gradients left); a pipeline too long for one row snakes
 * on (left to right, then right to left), so neighbouring stages stay neighbours. Other runs sit on
 * a circle (a ring all-reduce reads as a ring). Peers the pipeline does not name (a parameter
 * server, a spare) get a row of their own at the bottom.
 */
export function layoutNodes(
  peerIds: readonly string[],
  pipeline: PipelineView | null,
  width: number,
  margin = 40,
): NodeLayout {
  const placed = new Map<string, NodePlace>();
  let height = 0;
  if (pipeline && pipeline.assignments.length > 0) {
    const stages = Math.max(1, pipeline.stages);
    const fit = Math.max(1, Math.floor((width - 2 * margin) / NODE_SPACING) + 1);
    const cols = Math.min(stages, fit);
    const bands = Math.ceil(stages / cols); // rows per replica
    const dx = cols === 1 ? 0 : (width - 2 * margin) / (cols - 1);
    for (const a of pipeline.assignments) {
      const band = Math.floor(a.stage / cols);
      const k = a.stage % cols;
      const col = band % 2 === 0 ? k : cols - 1 - k;
      const row = a.replica * bands + band;
      const x = cols === 1 ? width / 2 : margin + col * dx;
      placed.set(a.peerId, { peerId: a.peerId, x, y: margin + row * ROW_SPACING });
    }
    height = 2 * margin + (Math.max(1, pipeline.replicas) * bands - 1) * ROW_SPACING;
  }
  const rest = peerIds.filter((id) => !placed.has(id));
  if (placed.size === 0) {
    const n = rest.length;
    // A circle big enough for n nodes NODE_SPACING apart, within the width when it can be.
    const r = n <= 1 ? 0 : Math.min(width / 2 - margin, Math.max(70, (n * NODE_SPACING) / (2 * Math.PI)));
    height = 2 * (r + margin);
    rest.forEach((peerId, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n; // from the top, clockwise
      placed.set(peerId, { peerId, x: width / 2 + r * Math.cos(a), y: height / 2 + r * Math.sin(a) });
    });
  } else if (rest.length > 0) {
    const y = height - margin + ROW_SPACING;
    rest.forEach((peerId, i) => {
      placed.set(peerId, { peerId, x: ((i + 1) * width) / (rest.length + 1), y });
    });
    height += ROW_SPACING;
  }
  return { nodes: [...placed.values()], height };
}

export interface EdgeGeometry {
  /** SVG path: a quadratic curve from the edge of one node to the edge of the other. */
  d: string;
  /** Where the rate label goes (the curve's midpoint). */
  labelX: number;
  labelY: number;
}

/**
 * The curve of edge a -> b between node circles of radius `r`, bowed to the left of its direction
 * by `bend` px so that a -> b and b -> a are two separate arcs; the label sits `labelGap` px
 * outside the arc. Null when the nodes overlap.
 */
export function edgeGeometry(
  a: { x: number; y: number },
  b: { x: number; y: number },
  r: number,
  bend = 16,
  labelGap = 7,
): EdgeGeometry | null {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy);
  if (len <= 2 * r) return null;
  const ux = dx / len;
  const uy = dy / len;
  // Left normal of the direction (screen coordinates: y grows downwards).
  const nx = uy;
  const ny = -ux;
  const mx = (a.x + b.x) / 2 + nx * bend * 2;
  const my = (a.y + b.y) / 2 + ny * bend * 2;
  // Leave each node along the tangent to the control point.
  const leave = (p: { x: number; y: number }): [number, number] => {
    const tx = mx - p.x;
    const ty = my - p.y;
    const tl = Math.hypot(tx, ty);
    return [p.x + (tx / tl) * r, p.y + (ty / tl) * r];
  };
  const [sx, sy] = leave(a);
  const [ex, ey] = leave(b);
  const f = (v: number): string => v.toFixed(1);
  return {
    d: `M${f(sx)},${f(sy)} Q${f(mx)},${f(my)} ${f(ex)},${f(ey)}`,
    // A quadratic's midpoint is (start + 2 control + end) / 4; the label sits just outside it.
    labelX: (sx + 2 * mx + ex) / 4 + nx * labelGap,
    labelY: (sy + 2 * my + ey) / 4 + ny * labelGap,
  };
}

/** Stroke width of an edge: 1.5 px up to 6 px for the fastest link (area-like, by square root). */
export function edgeWidth(rate: number, maxRate: number): number {
  if (!(maxRate > 0) || !(rate > 0)) return 1.5;
  return 1.5 + 4.5 * Math.sqrt(Math.min(1, rate / maxRate));
}
