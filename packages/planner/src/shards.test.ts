import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { planShards } from './shards.ts';

describe('planShards', () => {
  it('gives disjoint, equal, in-range shards', () => {
    for (const workers of [1, 2, 3, 4, 7]) {
      const shards = planShards(8000, workers);
      expect(shards).toHaveLength(workers);
      const seen = new Set<number>();
      for (const s of shards) {
        expect(s.count).toBe(Math.floor(8000 / workers));
        for (let i = s.start; i < s.start + s.count; i++) {
          expect(seen.has(i)).toBe(false);
          seen.add(i);
        }
        expect(s.start + s.count).toBeLessThanOrEqual(8000);
      }
    }
  });
  it('refuses impossible splits with a ConfigError', () => {
    expect(() => planShards(3, 4)).toThrow(ConfigError);
    expect(() => planShards(100, 0)).toThrow(ConfigError);
  });
});
