import { describe, expect, it } from 'vitest';
import type { PipelineView, TimelineSpan } from '@peertrain/coordinator';
import { edgeGeometry, edgeWidth, layoutNodes, linkRates } from './topology.ts';
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
    const nodes = layoutNodes(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'ps'], pipeline(3, 2), 400, 200, 40);
    const at = (id: string) => nodes.find((n) => n.peerId === id)!;
    expect(at('p0')).toMatchObject({ x: 40, y: 40 });
    expect(at('p2')).toMatchObject({ x: 360, y: 40 });
    expect(at('p4')).toMatchObject({ x: 200, y: 160 });
    // A peer outside the pipeline sits along the bottom edge.
    expect(at('ps').y).toBeGreaterThan(160);
    expect(nodes).toHaveLength(7);
  });

  it('puts other runs on a circle, the first at the top', () => {
    const nodes = layoutNodes(['a', 'b', 'c', 'd'], null, 200, 200, 20);
    expect(nodes[0]!.x).toBeCloseTo(100, 9);
    expect(nodes[0]!.y).toBeCloseTo(20, 9);
    expect(nodes[1]!.x).toBeCloseTo(180, 9);
    for (const n of nodes) expect(Math.hypot(n.x - 100, n.y - 100)).toBeCloseTo(80, 9);
    expect(layoutNodes(['solo'], null, 200, 100)).toEqual([{ peerId: 'solo', x: 100, y: 50 }]);
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
