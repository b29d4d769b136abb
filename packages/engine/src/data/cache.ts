// Keeps a worker's shard (and the test split) across page reloads, so a rejoining worker does not
// download and parse the dataset again. Browser: IndexedDB (it also works on plain-http LAN pages,
// where Cache Storage is unavailable because it needs a secure context). Node: memory.
import type { Shard } from '@peertrain/protocol';
import { sleep, throwIfAborted } from '@peertrain/base';
import { DataError } from '../errors.ts';
import type { Samples } from './dataset.ts';

export interface ShardCache {
  readonly kind: 'memory' | 'indexeddb';
  get(key: string, opts?: { signal?: AbortSignal }): Promise<Samples | undefined>;
  put(key: string, samples: Samples, opts?: { signal?: AbortSignal }): Promise<void>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
}

/** Cache key of a shard of a dataset; `version` changes when the dataset's bytes change. */
export function shardCacheKey(dataset: string, shard: Shard | 'test', version = 1): string {
  return shard === 'test'
    ? `${dataset}@${version}/test`
    : `${dataset}@${version}/${shard.start}+${shard.count}`;
}

/** A copy of rows [shard.start, shard.start + count) of a split, as cacheable samples. */
export function sliceSamples(samples: Samples, shard: Shard, sampleSize: number): Samples {
  const row = shard.start - samples.first;
  if (!(row >= 0 && row + shard.count <= samples.count)) {
    throw new DataError(`shard [${shard.start}, +${shard.count}) is outside the ${samples.count} samples`);
  }
  return {
    x: samples.x.slice(row * sampleSize, (row + shard.count) * sampleSize),
    y: samples.y.slice(row, row + shard.count),
    count: shard.count,
    first: shard.start,
  };
}

function isSamples(v: unknown): v is Samples {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    s['x'] instanceof Float32Array &&
    s['y'] instanceof Uint8Array &&
    typeof s['count'] === 'number' &&
    typeof s['first'] === 'number' &&
    s['y'].length === s['count'] &&
    s['count'] > 0 &&
    s['x'].length % s['count'] === 0
  );
}

export function memoryShardCache(): ShardCache {
  const entries = new Map<string, Samples>();
  return {
    kind: 'memory',
    get: (key, opts) => {
      throwIfAborted(opts?.signal);
      return Promise.resolve(entries.get(key));
    },
    put: (key, samples, opts) => {
      throwIfAborted(opts?.signal);
      entries.set(key, samples);
      return Promise.resolve();
    },
    delete: (key) => {
      entries.delete(key);
      return Promise.resolve();
    },
    keys: () => Promise.resolve([...entries.keys()]),
  };
}

const STORE = 'shards';

function request<T>(req: IDBRequest<T>, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      try {
        throwIfAborted(signal);
      } catch (err) {
        reject(err instanceof Error ? err : new DataError('aborted'));
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.onsuccess = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(req.result);
    };
    req.onerror = () => {
      signal?.removeEventListener('abort', onAbort);
      reject(new DataError(`indexeddb: ${req.error?.message ?? 'request failed'}`));
    };
  });
}

/** IndexedDB-backed cache (browser). Values are stored as structured clones of the typed arrays. */
export function indexedDbShardCache(dbName = 'peertrain-shards'): ShardCache {
  let db: Promise<IDBDatabase> | undefined;
  const open = (signal?: AbortSignal): Promise<IDBDatabase> => {
    if (!db) {
      const req = indexedDB.open(dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      db = request(req, undefined);
      db.catch(() => {
        db = undefined; // let a later call try again
      });
    }
    throwIfAborted(signal);
    return db;
  };
  const store = async (mode: IDBTransactionMode, signal?: AbortSignal): Promise<IDBObjectStore> =>
    (await open(signal)).transaction(STORE, mode).objectStore(STORE);
  return {
    kind: 'indexeddb',
    async get(key, opts) {
      const value: unknown = await request((await store('readonly', opts?.signal)).get(key), opts?.signal);
      if (value === undefined) return undefined;
      if (!isSamples(value)) throw new DataError(`indexeddb: cached ${key} is malformed`);
      return value;
    },
    async put(key, samples, opts) {
      const { x, y, count, first } = samples; // plain object: structured-cloneable
      await request((await store('readwrite', opts?.signal)).put({ x, y, count, first }, key), opts?.signal);
    },
    async delete(key) {
      await request((await store('readwrite')).delete(key), undefined);
    },
    async keys() {
      const all = await request((await store('readonly')).getAllKeys(), undefined);
      return all.map(String);
    },
  };
}

/** IndexedDB where the platform has it, memory otherwise (Node). */
export function defaultShardCache(): ShardCache {
  return typeof indexedDB === 'undefined' ? memoryShardCache() : indexedDbShardCache();
}

/**
 * The cached samples under `key`, or `build()` them and cache them. The samples are returned as
 * soon as they are built; writing them to the cache goes on behind (`stored` settles when it has):
 * in Chromium, IndexedDB took 2-3 s for a worker's 25 MB shard and 6 MB test split while the data
 * itself was ready in 1, and training need not wait for a copy kept for the next page load. A
 * cache that fails (quota, private mode) never fails the load. `storeAfterMs` holds the write back
 * that long (an abort of `signal` meanwhile drops it).
 */
export async function loadShard(
  cache: ShardCache,
  key: string,
  build: (signal: AbortSignal | undefined) => Samples | Promise<Samples>,
  opts: { signal?: AbortSignal; storeAfterMs?: number } = {},
): Promise<{ samples: Samples; cached: boolean; stored: Promise<void> }> {
  const hit = await cache.get(key, opts).catch((err: unknown) => {
    throwIfAborted(opts.signal);
    void err; // unreadable entry: rebuild below
    return undefined;
  });
  if (hit) return { samples: hit, cached: true, stored: Promise.resolve() };
  const samples = await build(opts.signal);
  throwIfAborted(opts.signal);
  const { signal, storeAfterMs = 0 } = opts;
  const so = signal ? { signal } : {};
  const put = (): Promise<void> => cache.put(key, samples, so);
  const stored = (storeAfterMs > 0 ? sleep(storeAfterMs, signal).then(put) : put()).catch(() => undefined);
  return { samples, cached: false, stored };
}
