import { describe, expect, it } from 'vitest';
import type { PipelineView, TimelineSpan } from '@peertrain/coordinator';
import { ROW_SPACING, edgeGeometry, edgeWidth, layoutNodes, linkRates } from './topology.ts';
import { stagePeer, syntheticGpipe } from './timeline.fixture.ts';

const send = (from: string, to: string, startMs: number, bytes: number): TimelineSpan => ({
  peerId: from,
  peer: to,
  kind: 'send',
  startMs,
  durMs: 1,
  step: 0,
  bytes,
  lane: 'comm',
});

describe('linkRates', () => {
  it('sums send bytes per direction over the whole spans window', () => {
    const spans: TimelineSpan[] = [
      send('a', 'b', 0, 1000),
      send('a', 'b', 100, 3000),
      send('b', 'a', 200, 500),
      // Receives, and sends without a peer or bytes, do not make links.
      { ...send('b', 'a', 300, 9999), kind: 'recv' },
      { peerId: 'a', kind: 'send', startMs: 300, durMs: 1, step: 0, lane: 'comm' },
      // The window runs to 499 + 1 = 500 ms although no send is there.
      { peerId: 'c', kind: 'forward', startMs: 400, durMs: 100, step: 0, lane: 'compute' },
    ];
    expect(linkRates(spans)).toEqual([
      { from: 'a', to: 'b', bytes: 4000, bytesPerSec: 8000, sends: 2 },
      { from: 'b', to: 'a', bytes: 500, bytesPerSec: 1000, sends: 1 },
    ]);
    expect(linkRates([])).toEqual([]);
  });

  it('finds the pipeline neighbours of a synthetic GPipe run', () => {
    const { spans } = syntheticGpipe({ stages: 3, microBatches: 4, steps: 2, bytes: 1000 });
    const links = linkRates(spans);
    const pairs = links.map((l) => `${l.from}>${l.to}`).sort();
    expect(pairs).toEqual(
      [
        `${stagePeer(0)}>${stagePeer(1)}`,
        `${stagePeer(1)}>${stagePeer(0)}`,
        `${stagePeer(1)}>${stagePeer(2)}`,
        `${stagePeer(2)}>${stagePeer(1)}`,
      ].sort(),
    );
    // 4 micro-batches x 2 steps each way.
    expect(links.every((l) => l.sends === 8 && l.bytes === 8000)).toBe(true);
  });
});

describe('layoutNodes', () => {
  const pipeline = (stages: number, replicas: number): PipelineView => ({
    ...syntheticGpipe({ stages, microBatches: 1, steps: 1 }).pipeline,
    stages,
    replicas,
    assignments: Array.from({ length: stages * replicas }, (_, rank) => ({
      peerId: `p${rank}`,
      stage: rank % stages,
      replica: Math.floor(rank / stages),
      first: 0,
      end: 1,
    })),
  });

  it('puts a pipeline on a grid: stages left to right, replicas top to bottom', () => {
    const { nodes, height } = layoutNodes(
      ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'ps'],
      pipeline(3, 2),
      400,
      40,
    );
    const at = (id: string) => nodes.find((n) => n.peerId === id)!;
    expect(at('p0')).toMatchObject({ x: 40, y: 40 });
    expect(at('p2')).toMatchObject({ x: 360, y: 40 });
    expect(at('p4')).toMatchObject({ x: 200, y: 40 + ROW_SPACING });
    // A peer outside the pipeline gets a row under it, inside the height.
    expect(at('ps').y).toBe(40 + 2 * ROW_SPACING);
    expect(height).toBe(at('ps').y + 40);
    expect(nodes).toHaveLength(7);
  });

  it('snakes a long pipeline over several rows, neighbours kept side by side', () => {
    // 300 px: (300 - 80) / 60 + 1 = 4 columns.
    const { nodes, height } = layoutNodes([], pipeline(10, 1), 300, 40);
    const at = (stage: number) => nodes.find((n) => n.peerId === `p${stage}`)!;
    expect([0, 1, 2, 3].map((s) => at(s).y)).toEqual([40, 40, 40, 40]);
    expect(at(3).x).toBe(260);
    // Row two runs back: stage 4 under stage 3.
    expect(at(4)).toMatchObject({ x: 260, y: 40 + ROW_SPACING });
    expect(at(7)).toMatchObject({ x: 40, y: 40 + ROW_SPACING });
    expect(at(8)).toMatchObject({ x: 40, y: 40 + 2 * ROW_SPACING });
    // Consecutive stages are one column or one row apart, never across the grid.
    const step = Math.max(ROW_SPACING, 220 / 3) + 1e-9;
    for (let s = 1; s < 10; s++) {
      expect(Math.hypot(at(s).x - at(s - 1).x, at(s).y - at(s - 1).y)).toBeLessThanOrEqual(step);
    }
    expect(height).toBe(80 + 2 * ROW_SPACING);
  });

  it('puts other runs on a circle, the first at the top', () => {
    const { nodes, height } = layoutNodes(['a', 'b', 'c', 'd'], null, 200, 20);
    expect(height).toBe(180);
    expect(nodes[0]!.x).toBeCloseTo(100, 9);
    expect(nodes[0]!.y).toBeCloseTo(20, 9);
    expect(nodes[1]!.x).toBeCloseTo(170, 9);
    for (const n of nodes) expect(Math.hypot(n.x - 100, n.y - 90)).toBeCloseTo(70, 9);
    expect(layoutNodes(['solo'], null, 200, 20)).toEqual({
      nodes: [{ peerId: 'solo', x: 100, y: 20 }],
      height: 40,
    });
    // Many peers: a bigger circle, as wide as the box allows.
    const many = layoutNodes(
      Array.from({ length: 16 }, (_, i) => `w${i}`),
      null,
      360,
      40,
    );
    expect(many.height).toBe(360);
  });
});

describe('edges', () => {
  it('bows a -> b and b -> a to opposite sides and starts on the node circles', () => {
    const a = { x: 0, y: 100 };
    const b = { x: 200, y: 100 };
    const ab = edgeGeometry(a, b, 10)!;
    const ba = edgeGeometry(b, a, 10)!;
    // Left of rightwards is up (smaller y) on screen; left of leftwards is down.
    expect(ab.labelY).toBeLessThan(100);
    expect(ba.labelY).toBeGreaterThan(100);
    const [sx, sy] = ab.d.slice(1).split(' ')[0]!.split(',').map(Number);
    expect(Math.hypot(sx! - a.x, sy! - a.y)).toBeCloseTo(10, 0);
    expect(edgeGeometry(a, { x: 5, y: 100 }, 10)).toBeNull();
  });

  it('scales width with the rate, within bounds', () => {
    expect(edgeWidth(0, 100)).toBe(1.5);
    expect(edgeWidth(100, 100)).toBe(6);
    expect(edgeWidth(25, 100)).toBeCloseTo(1.5 + 4.5 * 0.5, 12);
    expect(edgeWidth(500, 100)).toBe(6);
    expect(edgeWidth(5, 0)).toBe(1.5);
  });
});
