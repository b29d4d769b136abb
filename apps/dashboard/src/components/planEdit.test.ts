import { describe, expect, it } from 'vitest';
import type { PlanPreview } from '@peertrain/coordinator';
import { planStages, type StageRange } from '@peertrain/planner';
import {
  boundariesOf,
  checkPartition,
  editorRanges,
  equalShardCounts,
  evenRanges,
  moveBoundary,
  partitionText,
  previewKey,
  rangesOf,
  withShardCount,
} from './planEdit.ts';

const R = (...pairs: [number, number][]): StageRange[] => pairs.map(([first, end]) => ({ first, end }));

describe('partition <-> boundaries', () => {
  it('boundaries are the first layer of every stage after the first', () => {
    expect(boundariesOf(R([0, 3], [3, 5], [5, 9]))).toEqual([3, 5]);
    expect(boundariesOf(R([0, 9]))).toEqual([]);
  });

  it('round-trips ranges, boundaries and the field text', () => {
    const ranges = R([0, 3], [3, 4], [4, 9]);
    expect(rangesOf(boundariesOf(ranges), 9)).toEqual(ranges);
    expect(partitionText(ranges)).toBe('0-2,3,4-8');
    expect(editorRanges('0-2,3,4-8', 9, 3, null)).toEqual(ranges);
  });

  it("draws 'auto' as the proposal when there is one, else an even split", () => {
    expect(editorRanges('auto', 9, 4, null)).toEqual(R([0, 2], [2, 4], [4, 6], [6, 9]));
    expect(evenRanges(3, 4)).toBeNull();
    const proposal = planStages(
      [1, 1, 1, 5].map((costMs) => ({ costMs, paramBytes: 0, activationBytes: 0 })),
      [
        { id: 'a', gflops: 1, memoryBytes: 1e9 },
        { id: 'b', gflops: 1, memoryBytes: 1e9 },
      ],
    );
    expect(editorRanges(' auto ', 4, 2, proposal)).toEqual(R([0, 3], [3, 4]));
    // a proposal for another stage count is not drawn
    expect(editorRanges('', 4, 3, proposal)).toEqual(R([0, 1], [1, 2], [2, 4]));
  });

  it('draws nothing for text that is not a partition of these layers', () => {
    expect(editorRanges('0-2,4-8', 9, 2, null)).toBeNull(); // gap
    expect(editorRanges('0-8', 9, 2, null)).toBeNull(); // too few ranges
    expect(editorRanges('x', 9, 2, null)).toBeNull();
  });
});

describe('moveBoundary (dragging a handle)', () => {
  const b = [3, 5];
  it('moves to the nearest layer cut', () => {
    expect(moveBoundary(b, 0, 1.4, 9)).toEqual([1, 5]);
    expect(moveBoundary(b, 1, 6.6, 9)).toEqual([3, 7]);
  });

  it('keeps at least one layer in every stage', () => {
    expect(moveBoundary(b, 0, -4, 9)).toEqual([1, 5]);
    expect(moveBoundary(b, 0, 5, 9)).toEqual([4, 5]); // cannot reach its right neighbour
    expect(moveBoundary(b, 1, 3, 9)).toEqual([3, 4]);
    expect(moveBoundary(b, 1, 99, 9)).toEqual([3, 8]);
  });

  it('returns the same array when nothing moves (no re-render, no text change)', () => {
    expect(moveBoundary(b, 0, 3.2, 9)).toBe(b);
    expect(moveBoundary([1], 0, 0, 2)).toEqual([1]);
    expect(moveBoundary(b, 5, 2, 9)).toBe(b);
  });
});

describe('checkPartition (a dragged partition against the preview)', () => {
  // Layer 1 holds 1 MB of parameters (x3 with gradients and optimizer state).
  const layers = [0, 1e6, 0, 0].map((paramBytes, i) => ({
    name: `${i}.dense`,
    costMs: 2,
    paramBytes,
    activationBytes: 1000,
  }));
  const preview: PlanPreview = {
    layers,
    devices: [
      { peerId: 'pt-r-w-big', speed: 1, memoryBytes: 1e8 },
      { peerId: 'pt-r-w-small', speed: 1, memoryBytes: 1e6 },
    ],
    options: { microBatches: 4, referenceGflops: 1, bytesPerMs: 20_000 },
    plan: { stages: [], bottleneckMs: 0, predictedStepMs: 0 },
  };

  it('predicts time and memory per stage when every stage fits', () => {
    const r = checkPartition(preview, R([0, 2], [2, 4]));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan.stages.map((s) => s.predictedMs)).toEqual([4, 4]);
    expect(r.plan.stages[0]!.memoryBytes).toBe(3e6 + 2 * 2 * 1000);
    expect(r.plan.predictedStepMs).toBe((4 + 2 - 1) * 4);
  });

  it('refuses a stage that does not fit its device, naming device, layers, need and have', () => {
    const r = checkPartition(preview, R([0, 1], [1, 4]));
    expect(r).toMatchObject({ ok: false, stage: 1 });
    if (r.ok) return;
    expect(r.message).toMatch(
      /^stage 1 \(layers 1-3\) does not fit pt-r-w-small: needs 2\.9 MiB, has 0\.954 MiB$/,
    );
  });
});

describe('previewKey', () => {
  it('changes with what the profile depends on, not with steps or lr', () => {
    const c = {
      strategy: 'pipeline',
      workers: 4,
      spares: 0,
      replicas: 1,
      model: 'deepMlp',
      batch: 128,
      microBatches: 4,
    } as const;
    expect(previewKey(c)).toBe(previewKey({ ...c }));
    expect(previewKey(c)).not.toBe(previewKey({ ...c, microBatches: 8 }));
    expect(previewKey(c)).not.toBe(previewKey({ ...c, model: 'cnn' }));
    // 4 workers with a spare are 3 stages: another cut.
    expect(previewKey(c)).not.toBe(previewKey({ ...c, spares: 1 }));
  });
});

describe('shard sizes', () => {
  it('default to planShards without weights', () => {
    expect(equalShardCounts('mnist', 3)).toEqual([2666, 2666, 2666]);
    expect(equalShardCounts('mnist', 0)).toEqual([]);
  });

  it('the last worker takes what the others leave of the train set', () => {
    expect(withShardCount(['2666', '2666', '2666'], 0, '1000', 8000)).toEqual(['1000', '2666', '4334']);
    expect(withShardCount(['1000', '2666', '4334'], 1, '', 8000)).toEqual(['1000', '', '7000']);
    expect(withShardCount(['8000'], 0, '5', 8000)).toEqual(['5']);
  });
});
