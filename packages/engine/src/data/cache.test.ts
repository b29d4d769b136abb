import { describe, expect, it, vi } from 'vitest';
import { DataError } from '../errors.ts';
import { defaultShardCache, loadShard, memoryShardCache, shardCacheKey, sliceSamples } from './cache.ts';
import type { ShardCache } from './cache.ts';
import type { Samples } from './dataset.ts';

const split: Samples = {
  x: Float32Array.from({ length: 20 }, (_, i) => i),
  y: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  count: 10,
  first: 0,
};

describe('shard cache', () => {
  it('keys name the dataset, its version and the shard', () => {
    expect(shardCacheKey('mnist', { start: 100, count: 50 })).toBe('mnist@1/100+50');
    expect(shardCacheKey('mnist', 'test', 2)).toBe('mnist@2/test');
  });

  it('sliceSamples copies a shard and keeps its global offset', () => {
    const s = sliceSamples(split, { start: 3, count: 2 }, 2);
    expect(Array.from(s.x)).toEqual([6, 7, 8, 9]);
    expect(Array.from(s.y)).toEqual([3, 4]);
    expect(s.first).toBe(3);
    expect(() => sliceSamples(split, { start: 9, count: 2 }, 2)).toThrow(DataError);
  });

  it('in Node the default cache is memory', () => {
    expect(defaultShardCache().kind).toBe('memory');
  });

  it('loadShard builds once, then serves from the cache', async () => {
    const cache = memoryShardCache();
    let builds = 0;
    const build = (): Samples => (builds++, sliceSamples(split, { start: 2, count: 4 }, 2));
    const first = await loadShard(cache, 'k', build);
    await first.stored;
    const second = await loadShard(cache, 'k', build);
    expect([first.cached, second.cached, builds]).toEqual([false, true, 1]);
    expect(second.samples.first).toBe(2);
    expect(await cache.keys()).toEqual(['k']);
    await cache.delete('k');
    expect(await cache.get('k')).toBeUndefined();
  });

  it('a failing cache never fails the load', async () => {
    const broken: ShardCache = {
      kind: 'memory',
      get: () => Promise.reject(new DataError('unreadable')),
      put: () => Promise.reject(new DataError('quota')),
      delete: () => Promise.resolve(),
      keys: () => Promise.resolve([]),
    };
    const r = await loadShard(broken, 'k', () => split);
    expect([r.samples, r.cached]).toEqual([split, false]);
    await expect(r.stored).resolves.toBeUndefined();
  });

  it('returns the built samples without waiting for the cache to store them', async () => {
    let release = (): void => {};
    const puts: string[] = [];
    const slow: ShardCache = {
      ...memoryShardCache(),
      put: (key) =>
        new Promise<void>((resolve) => {
          puts.push(key);
          release = resolve;
        }),
    };
    const r = await loadShard(slow, 'k', () => split);
    expect([r.samples, r.cached, puts]).toEqual([split, false, ['k']]);
    let stored = false;
    void r.stored.then(() => (stored = true));
    await Promise.resolve();
    expect(stored).toBe(false);
    release();
    await r.stored;
    expect(stored).toBe(true);
  });

  it('storeAfterMs holds the write back; an abort meanwhile drops it', async () => {
    vi.useFakeTimers();
    try {
      const cache = memoryShardCache();
      const r = await loadShard(cache, 'k', () => split, { storeAfterMs: 10_000 });
      await vi.advanceTimersByTimeAsync(9_000);
      expect(await cache.keys()).toEqual([]);
      await vi.advanceTimersByTimeAsync(1_000);
      await r.stored;
      expect(await cache.keys()).toEqual(['k']);
      const stop = new AbortController();
      const dropped = await loadShard(cache, 'other', () => split, {
        storeAfterMs: 10_000,
        signal: stop.signal,
      });
      stop.abort();
      await vi.advanceTimersByTimeAsync(10_000);
      await dropped.stored;
      expect(await cache.keys()).toEqual(['k']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('honours an aborted signal', async () => {
    await expect(
      loadShard(memoryShardCache(), 'k', () => split, { signal: AbortSignal.abort() }),
    ).rejects.toThrow();
  });
});
