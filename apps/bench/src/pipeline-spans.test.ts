import { describe, expect, it } from 'vitest';
import { toChromeTrace } from '@peertrain/telemetry';
import type { Span } from '@peertrain/telemetry';
import { analyzePipelineTrace, imbalanceBubble, overlapProfile } from './pipeline-spans.ts';

const NAMES = { a: 'rank 0: stage 0 (layers 0-1)', b: 'rank 1: stage 1 (layers 2-8)' };

function span(
  peerId: string,
  kind: Span['kind'],
  step: number,
  startMs: number,
  durMs: number,
  microBatch?: number,
): Span {
  const lane = kind === 'forward' || kind === 'backward' ? 'compute' : 'comm';
  return { peerId, kind, step, startMs, durMs, lane, ...(microBatch !== undefined ? { microBatch } : {}) };
}

/**
 * GPipe, P = 2, M = 2, forward 1 ms and backward 2 ms per micro-batch on both stages, starting at
 * `t`: makespan 9 ms, busy 12 stage-ms, bubble 1 - 12 / 18 = 1/3 = (P-1)/(M+P-1). `slow` stretches
 * stage 1's backward (a warm-up step).
 */
function gpipeStep(step: number, t: number, slow = 1): Span[] {
  const b1 = 2 * slow;
  return [
    span('a', 'forward', step, t, 1, 0),
    span('a', 'forward', step, t + 1, 1, 1),
    span('a', 'send', step, t + 1, 0.5, 0),
    span('b', 'recv', step, t + 1, 0.2, 0),
    span('b', 'forward', step, t + 1, 1, 0),
    span('b', 'forward', step, t + 2, 1, 1),
    span('b', 'backward', step, t + 3, b1, 1),
    span('b', 'backward', step, t + 3 + b1, b1, 0),
    span('a', 'backward', step, t + 3 + b1, 2, 1),
    span('a', 'backward', step, t + 5 + b1, 2, 0),
    // Not part of the bubble: after the flush.
    span('a', 'optimizer', step, t + 7 + b1, 3),
  ];
}

describe('overlapProfile', () => {
  it('splits a window by how many intervals cover it', () => {
    const p = overlapProfile(
      [
        { startUs: 0, endUs: 4 },
        { startUs: 2, endUs: 6 },
      ],
      0,
      10,
      2,
    );
    // 0-2: one, 2-4: two, 4-6: one, 6-10: none.
    expect(p).toEqual([0.4, 0.4, 0.2]);
  });

  it('does not count touching intervals as overlapping, and clips to the window', () => {
    const p = overlapProfile(
      [
        { startUs: -5, endUs: 5 },
        { startUs: 5, endUs: 20 },
      ],
      0,
      10,
      2,
    );
    expect(p).toEqual([0, 1, 0]);
  });

  it('folds more intervals than maxK into the last bucket and handles an empty window', () => {
    const three = [0, 1, 2].map(() => ({ startUs: 0, endUs: 10 }));
    expect(overlapProfile(three, 0, 10, 2)).toEqual([0, 0, 1]);
    expect(overlapProfile(three, 5, 5, 2)).toEqual([0, 0, 0]);
  });
});

describe('imbalanceBubble', () => {
  it('is the theory for equal stages', () => {
    expect(imbalanceBubble([3, 3, 3, 3], 8)).toBeCloseTo(3 / 11, 12);
    expect(imbalanceBubble([5, 5], 1)).toBeCloseTo(1 / 2, 12);
  });

  it('grows with the slowest stage', () => {
    // sum 7, max 2, M = 8: T = 7 + 7 * 2 = 21, busy 56 of 84.
    expect(imbalanceBubble([1, 2, 2, 2], 8)).toBeCloseTo(1 - 56 / 84, 12);
    expect(imbalanceBubble([1, 2, 2, 2], 8)).toBeGreaterThan(3 / 11);
  });

  it('is NaN without compute', () => {
    expect(imbalanceBubble([0, 0], 4)).toBeNaN();
    expect(imbalanceBubble([], 4)).toBeNaN();
  });
});

describe('analyzePipelineTrace', () => {
  const spans = [
    ...gpipeStep(0, 0, 5), // warm-up: stage 1's backward 5x slower
    ...gpipeStep(1, 100),
    ...gpipeStep(2, 200),
  ];
  const trace = toChromeTrace(spans, { peerNames: NAMES });

  it('measures the bubble of the steps after the warm-up', () => {
    const a = analyzePipelineTrace(trace, { stages: 2, microBatches: 2, warmupSteps: 1 });
    expect(a).not.toBeNull();
    expect(a!.steps).toEqual([1, 2]);
    expect(a!.makespanMs).toBeCloseTo(9, 9);
    expect(a!.bubble).toBeCloseTo(1 / 3, 9);
    expect(a!.imbalanceBubble).toBeCloseTo(1 / 3, 9);
    expect(a!.meanConcurrency).toBeCloseTo(12 / 9, 9);
    // 0-1: one stage, 1-2: two, 2-3: one, 3-5: one, 5-7: two, 7-9: one.
    expect(a!.concurrency[0]).toBeCloseTo(0, 9);
    expect(a!.concurrency[1]).toBeCloseTo(6 / 9, 9);
    expect(a!.concurrency[2]).toBeCloseTo(3 / 9, 9);
  });

  it('splits each stage into forward, backward, communication and idle time', () => {
    const a = analyzePipelineTrace(trace, { stages: 2, microBatches: 2, warmupSteps: 1 })!;
    expect(a.stages).toHaveLength(2);
    expect(a.stages[0]).toMatchObject({ stage: 0, forwardMs: 2, backwardMs: 4, idleMs: 3 });
    expect(a.stages[0]!.commMs).toBeCloseTo(0.5, 9);
    expect(a.stages[1]).toMatchObject({ stage: 1, forwardMs: 2, backwardMs: 4, idleMs: 3 });
    expect(a.stages[1]!.commMs).toBeCloseTo(0.2, 9);
  });

  it('sees an uneven warm-up step when it is included, and uses every step when all are warm-up', () => {
    const a = analyzePipelineTrace(trace, { stages: 2, microBatches: 2, warmupSteps: 5 })!;
    expect(a.steps).toEqual([0, 1, 2]);
    // Step 0: stage 1's backward takes 10 ms per micro-batch and ends last, at 3 + 20 = 23.
    const warm = analyzePipelineTrace(toChromeTrace(gpipeStep(0, 0, 5), { peerNames: NAMES }), {
      stages: 2,
      microBatches: 2,
      warmupSteps: 0,
    })!;
    expect(warm.makespanMs).toBeCloseTo(23, 9);
    expect(warm.bubble).toBeCloseTo(1 - (6 + 22) / (2 * 23), 9);
    expect(warm.imbalanceBubble).toBeGreaterThan(1 / 3);
  });

  it('keeps replica 0 only, and returns null without compute spans', () => {
    const withReplica = toChromeTrace(
      [...gpipeStep(1, 0), span('c', 'forward', 1, 0, 50, 0), span('d', 'forward', 1, 0, 50, 0)],
      {
        peerNames: {
          ...NAMES,
          c: 'rank 2: stage 0 replica 1 (layers 0-1)',
          d: 'rank 3: stage 2 (layers 9-9)',
        },
      },
    );
    const a = analyzePipelineTrace(withReplica, { stages: 2, microBatches: 2, warmupSteps: 0 })!;
    expect(a.stages.map((s) => s.stage)).toEqual([0, 1]);
    expect(a.stages[0]!.forwardMs).toBe(2);
    expect(a.makespanMs).toBeCloseTo(9, 9);
    const empty = toChromeTrace([span('a', 'send', 0, 0, 1, 0)], { peerNames: NAMES });
    expect(analyzePipelineTrace(empty, { stages: 2, microBatches: 2, warmupSteps: 0 })).toBeNull();
  });
});
