import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { parseRunConfig } from './config.ts';

function issuesOf(input: unknown): string[] {
  try {
    parseRunConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('RunConfig shards (relative shard sizes per data-parallel rank)', () => {
  it('is optional: absent means equal shards', () => {
    expect(parseRunConfig({}).shards).toBeUndefined();
  });

  it('takes one weight per worker for data parallelism', () => {
    expect(parseRunConfig({ workers: 3, shards: [1, 2, 0.5] }).shards).toEqual([1, 2, 0.5]);
  });

  it('takes one weight per replica for hybrid and one for a pipeline', () => {
    expect(parseRunConfig({ strategy: 'hybrid', workers: 4, replicas: 2, shards: [3, 1] }).shards).toEqual([
      3, 1,
    ]);
    expect(issuesOf({ strategy: 'pipeline', workers: 3, shards: [1, 1, 1] })).toEqual([
      'shards: 3 shard weights for 1 data-parallel ranks',
    ]);
  });

  it('refuses a wrong length with the counts', () => {
    expect(issuesOf({ workers: 3, shards: [1, 1] })).toEqual([
      'shards: 2 shard weights for 3 data-parallel ranks',
    ]);
  });

  it('refuses zero, negative and non-finite weights naming the rank', () => {
    expect(issuesOf({ workers: 3, shards: [1, 0, -2] })).toEqual([
      'shards: rank 1: shard weight 0 is not a number > 0',
      'shards: rank 2: shard weight -2 is not a number > 0',
    ]);
    const inf = issuesOf({ workers: 1, shards: [Infinity] });
    expect(inf).toHaveLength(1);
    expect(inf[0]).toMatch(/^shards\.0: /);
  });
});
