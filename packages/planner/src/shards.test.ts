import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { planShards } from './shards.ts';

function expectDisjointInRange(shards: { start: number; count: number }[], total: number): void {
  let next = 0;
  for (const s of shards) {
    expect(s.start).toBe(next); // contiguous, in rank order, no overlap
    expect(s.count).toBeGreaterThanOrEqual(1);
    next = s.start + s.count;
  }
  expect(next).toBeLessThanOrEqual(total);
}

describe('planShards', () => {
  it('gives disjoint, equal, in-range shards', () => {
    for (const workers of [1, 2, 3, 4, 7]) {
      const shards = planShards(8000, workers);
      expect(shards).toHaveLength(workers);
      for (const s of shards) expect(s.count).toBe(Math.floor(8000 / workers));
      expectDisjointInRange(shards, 8000);
    }
  });

  it('equal weights give exactly the default shards', () => {
    expect(planShards(8000, 3, [2, 2, 2])).toEqual(planShards(8000, 3));
  });

  it('sizes shards in proportion to the weights', () => {
    const shards = planShards(8000, 3, [1, 2, 1]);
    expect(shards).toEqual([
      { start: 0, count: 2000 },
      { start: 2000, count: 4000 },
      { start: 6000, count: 2000 },
    ]);
  });

  it('sample counts that sum to the train set come back as they are', () => {
    const counts = [1000, 4500, 2500];
    expect(planShards(8000, 3, counts).map((s) => s.count)).toEqual(counts);
    const odd = planShards(4096, 3, [1, 1, 3]);
    expectDisjointInRange(odd, 4096);
    expect(odd.map((s) => s.count)).toEqual([819, 819, 2457]);
  });

  it('refuses impossible splits with a ConfigError', () => {
    expect(() => planShards(3, 4)).toThrow(ConfigError);
    expect(() => planShards(100, 0)).toThrow(ConfigError);
    // a weight so small its rank would get no sample
    expect(() => planShards(100, 2, [1, 0.001])).toThrow(/rank 1 would get no sample/);
  });

  it('refuses bad weights listing every problem', () => {
    try {
      planShards(100, 3, [1, 0, Number.NaN, 2]);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        '4 shard weights for 3 workers',
        'rank 1: shard weight 0 is not a number > 0',
        'rank 2: shard weight NaN is not a number > 0',
      ]);
    }
  });
});
