import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { ShapeError } from '../errors.ts';
import { gatherBatch, globalBatchIndices, shardBatchIndices } from './batching.ts';

const range = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);

describe('shardBatchIndices', () => {
  const shard = { start: 100, count: 10 };

  it('covers the shard exactly once per epoch, in a seeded order, wrapping across epochs', () => {
    // batch 4 over 10 samples: steps 0..4 cover 20 positions = exactly two epochs
    const steps = [0, 1, 2, 3, 4].map((s) => shardBatchIndices(shard, s, 4, 7));
    const all = steps.flatMap((b) => Array.from(b));
    expect(all.slice(0, 10).sort((a, b) => a - b)).toEqual(range(100, 10));
    expect(all.slice(10, 20).sort((a, b) => a - b)).toEqual(range(100, 10));
    // step 2 straddles the epoch boundary (positions 8..11)
    expect(steps[2]!.length).toBe(4);
    // a different epoch is a different order, and not the identity
    expect(all.slice(0, 10)).not.toEqual(all.slice(10, 20));
    expect(all.slice(0, 10)).not.toEqual(range(100, 10));
  });

  it('is deterministic and depends on the seed', () => {
    expect(shardBatchIndices(shard, 3, 4, 7)).toEqual(shardBatchIndices(shard, 3, 4, 7));
    expect(shardBatchIndices(shard, 0, 10, 7)).not.toEqual(shardBatchIndices(shard, 0, 10, 8));
  });

  it('handles a batch larger than the shard', () => {
    const b = shardBatchIndices({ start: 0, count: 3 }, 1, 7, 1); // positions 7..13, epochs 2..4
    expect(b.length).toBe(7);
    for (const i of b) expect(i).toBeLessThan(3);
  });

  it('refuses bad arguments', () => {
    expect(() => shardBatchIndices(shard, -1, 4, 1)).toThrow(ConfigError);
    expect(() => shardBatchIndices(shard, 0, 0, 1)).toThrow(ConfigError);
    expect(() => shardBatchIndices({ start: 0, count: 0 }, 0, 1, 1)).toThrow(ConfigError);
  });
});

describe('globalBatchIndices', () => {
  const shards = [
    { start: 0, count: 30 },
    { start: 30, count: 30 },
    { start: 60, count: 25 },
  ];

  it('is the rank-ordered concatenation of every worker batch', () => {
    for (const step of [0, 5, 17]) {
      const global = globalBatchIndices(shards, step, 8, 3);
      const parts = shards.map((s) => Array.from(shardBatchIndices(s, step, 8, 3)));
      expect(Array.from(global)).toEqual(parts.flat());
    }
  });

  it('accepts one batch size per rank', () => {
    const g = globalBatchIndices(shards, 2, [4, 8, 2], 3);
    expect(g.length).toBe(14);
    expect(Array.from(g.subarray(12))).toEqual(Array.from(shardBatchIndices(shards[2]!, 2, 2, 3)));
    expect(() => globalBatchIndices(shards, 0, [1, 2], 3)).toThrow(ConfigError);
  });
});

describe('gatherBatch', () => {
  // Rows 10..13 of a split, 3 values each.
  const samples = {
    x: Float32Array.from(range(0, 12)),
    y: Uint8Array.from([5, 6, 7, 8]),
    count: 4,
    first: 10,
  };

  it('copies rows by global index from a split or a shard', () => {
    const b = gatherBatch(samples, Int32Array.from([13, 10]), 3);
    expect(Array.from(b.x)).toEqual([9, 10, 11, 0, 1, 2]);
    expect(Array.from(b.y)).toEqual([8, 5]);
    expect(() => gatherBatch(samples, Int32Array.from([9]), 3)).toThrow(ShapeError);
  });

  it('fills the buffers it is given, and refuses buffers of another size', () => {
    const into = { x: new Float32Array(6).fill(-1), y: new Uint8Array(2) };
    const b = gatherBatch(samples, Int32Array.from([11, 12]), 3, into);
    expect(b.x).toBe(into.x);
    expect(b.y).toBe(into.y);
    expect(Array.from(into.x)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(Array.from(into.y)).toEqual([6, 7]);
    expect(() => gatherBatch(samples, Int32Array.from([11]), 3, into)).toThrow(ShapeError);
  });
});
