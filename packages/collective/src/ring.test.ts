import { ConfigError, PeerLostError, ProtocolError } from '@peertrain/protocol';
import { AbortError, mulberry32 } from '@peertrain/base';
import type { Mesh, TensorKey, TensorMessage } from '@peertrain/transport';
import { describe, expect, it } from 'vitest';
import { chunkBounds, ringAllReduce, ringElemsSent, ringTag, ringTagSpan } from './ring.ts';
import type { AllReduceStats } from './ring.ts';
import { ids, inputs, useTestHubs } from './testMesh.ts';
import type { TestHubOptions, TestMesh } from './testMesh.ts';

const newHub = useTestHubs();

/** Plain float64 sum of the inputs, and sum of magnitudes (for the tolerance). */
function plainSum(xs: Float32Array[]): { sum: Float64Array; mag: Float64Array } {
  const length = xs[0]?.length ?? 0;
  const sum = new Float64Array(length);
  const mag = new Float64Array(length);
  for (const x of xs) {
    for (let i = 0; i < length; i++) {
      sum[i]! += x[i]!;
      mag[i]! += Math.abs(x[i]!);
    }
  }
  return { sum, mag };
}

async function runAll(
  n: number,
  length: number,
  bucketElems: number,
  hubOpts: TestHubOptions = {},
  maxInFlight?: number,
): Promise<{ data: Float32Array[]; original: Float32Array[]; stats: AllReduceStats[]; meshes: TestMesh[] }> {
  const h = newHub(hubOpts);
  const group = ids(n);
  const meshes = group.map((id) => h.mesh(id));
  const original = inputs(n, length, n * 1000 + length);
  const data = original.map((x) => x.slice());
  const stats = await Promise.all(
    meshes.map((mesh, r) =>
      ringAllReduce(mesh, group, data[r]!, {
        runId: 3,
        step: 9,
        bucketElems,
        ...(maxInFlight === undefined ? {} : { maxInFlight }),
      }),
    ),
  );
  return { data, original, stats, meshes };
}

function expectSummed(data: Float32Array[], original: Float32Array[]): void {
  const { sum, mag } = plainSum(original);
  const first = data[0]!;
  for (let i = 0; i < first.length; i++) {
    const tol = 1e-6 * (mag[i]! + 1) * original.length;
    if (Math.abs(first[i]! - sum[i]!) > tol) {
      expect.fail(`element ${i}: got ${first[i]}, expected ${sum[i]}`);
    }
  }
  // Bit-identical on every peer (compared as raw bits; toEqual on large arrays is slow).
  const bits = new Uint32Array(first.buffer, first.byteOffset, first.length);
  for (const [r, d] of data.entries()) {
    const other = new Uint32Array(d.buffer, d.byteOffset, d.length);
    const i = other.findIndex((v, j) => v !== bits[j]);
    if (i >= 0) expect.fail(`peer ${r} differs from peer 0 at element ${i}`);
  }
}

/** Exact bytes rank r sends for `length` elements in buckets of `bucketElems`. */
function expectedBytes(length: number, bucketElems: number, n: number, rank: number): number {
  let elems = 0;
  for (let start = 0; start < length; start += bucketElems) {
    elems += ringElemsSent(Math.min(bucketElems, length - start), n, rank);
  }
  return elems * 4;
}

describe('chunkBounds and tags', () => {
  it('splits unevenly without losing elements, empty chunks last', () => {
    expect(chunkBounds(10, 3)).toEqual([0, 4, 7, 10]);
    expect(chunkBounds(2, 4)).toEqual([0, 1, 2, 2, 2]);
    expect(chunkBounds(0, 2)).toEqual([0, 0, 0]);
  });

  it('gives each (bucket, phase, round) its own tag, densely', () => {
    for (const n of [2, 3, 7]) {
      const tags = new Set<number>();
      for (let b = 0; b < 5; b++) {
        for (const phase of [0, 1] as const)
          for (let s = 0; s < n - 1; s++) tags.add(ringTag(n, b, phase, s, 10));
      }
      expect(tags.size).toBe(ringTagSpan(n, 5));
      expect(Math.min(...tags)).toBe(10);
      expect(Math.max(...tags)).toBe(10 + ringTagSpan(n, 5) - 1);
    }
  });
});

describe('ringAllReduce', () => {
  const cases: [length: number, buckets: number[]][] = [
    [1, [1, 4]],
    [5, [1, 2, 5, 64]],
    [1000, [3, 128, 1000]],
    [100_003, [8192, 200_000]],
  ];
  for (let n = 1; n <= 7; n++) {
    for (const [length, bucketSizes] of cases) {
      for (const bucketElems of bucketSizes) {
        it(`N=${n} length=${length} bucket=${bucketElems}: plain sum, bit-identical, exact bytes`, async () => {
          const { data, original, stats, meshes } = await runAll(n, length, bucketElems);
          expectSummed(data, original);
          const bytes = length * 4;
          let total = 0;
          for (const [r, s] of stats.entries()) {
            expect(s.bytesSent).toBe(expectedBytes(length, bucketElems, n, r));
            // 2(N-1)/N of the bytes, within the rounding of uneven chunks (< 2 elements a bucket).
            expect(Math.abs(s.bytesSent - ((2 * (n - 1)) / n) * bytes)).toBeLessThanOrEqual(8 * s.buckets);
            expect(s.bytesReceived).toBe(stats[(r + n - 1) % n]!.bytesSent);
            expect(meshes[r]!.stats().total.bytesSent).toBe(s.bytesSent);
            expect(meshes[r]!.pendingReceivers()).toBe(0);
            expect(meshes[r]!.bufferedMessages()).toBe(0);
            total += s.bytesSent;
          }
          expect(total).toBe(2 * (n - 1) * bytes);
        });
      }
    }
  }

  it('is a no-op for N = 1 (no traffic, data untouched)', async () => {
    const { data, original, stats } = await runAll(1, 1000, 100);
    expect(data[0]).toEqual(original[0]);
    expect(stats[0]).toMatchObject({ bytesSent: 0, bytesReceived: 0, buckets: 10 });
  });

  it('stays exact when links have different delays and messages reorder', async () => {
    const { data, original } = await runAll(5, 10_007, 700, {
      delayMs: (from, to) => (from.charCodeAt(1) * 7 + to.charCodeAt(1)) % 3,
      jitterMs: 3,
      random: mulberry32(42),
    });
    expectSummed(data, original);
  });

  it('overlaps buckets, never more than maxInFlight at once', async () => {
    const h = newHub({ delayMs: () => 1 });
    const n = 4;
    const group = ids(n);
    const inFlight = new Map<number, number>(); // bucket -> pending receives, on p0
    let peak = 0;
    const spy = watchReceives(h.mesh('p0'), (key, delta) => {
      const bucket = Math.floor(key.tag / (2 * (n - 1)));
      const count = (inFlight.get(bucket) ?? 0) + delta;
      if (count === 0) inFlight.delete(bucket);
      else inFlight.set(bucket, count);
      peak = Math.max(peak, inFlight.size);
    });
    const meshes = [spy, ...group.slice(1).map((id) => h.mesh(id))];
    const data = inputs(n, 4000, 5);
    await Promise.all(
      meshes.map((m, r) =>
        ringAllReduce(m, group, data[r]!, { runId: 0, step: 0, bucketElems: 100, maxInFlight: 3 }),
      ),
    );
    expect(peak).toBe(3);
  });

  it('reports each phase as disjoint busy intervals that add up to its stats', async () => {
    const h = newHub({ delayMs: () => 1 });
    const n = 3;
    const group = ids(n);
    const data = inputs(n, 3000, 9);
    const seen = group.map(() => [] as { phase: string; t0: number; t1: number }[]);
    const meshes = group.map((id) => h.mesh(id));
    const stats = await Promise.all(
      meshes.map((m, r) =>
        ringAllReduce(m, group, data[r]!, {
          runId: 0,
          step: 0,
          bucketElems: 500,
          maxInFlight: 2,
          onPhase: (phase, t0, t1) => seen[r]!.push({ phase, t0, t1 }),
        }),
      ),
    );
    for (let r = 0; r < n; r++) {
      for (const [phase, total] of [
        ['reduceScatter', stats[r]!.reduceScatterMs],
        ['allGather', stats[r]!.allGatherMs],
      ] as const) {
        const spans = seen[r]!.filter((s) => s.phase === phase);
        expect(spans.length).toBeGreaterThan(0);
        for (let i = 0; i < spans.length; i++) {
          expect(spans[i]!.t1).toBeGreaterThanOrEqual(spans[i]!.t0);
          if (i > 0) expect(spans[i]!.t0).toBeGreaterThanOrEqual(spans[i - 1]!.t1);
        }
        const sum = spans.reduce((a, s) => a + (s.t1 - s.t0), 0);
        expect(sum).toBeCloseTo(total, 6);
      }
      // The first reduce-scatter starts before the first all-gather (a bucket's halves run in order).
      const first = (p: string) => seen[r]!.find((s) => s.phase === p)!.t0;
      expect(first('reduceScatter')).toBeLessThanOrEqual(first('allGather'));
    }
  });

  it('rejects promptly everywhere on abort and leaves no pending receivers', async () => {
    const h = newHub({ delayMs: () => 2 });
    const n = 4;
    const group = ids(n);
    const meshes = group.map((id) => h.mesh(id));
    const data = inputs(n, 100_003, 7);
    const controllers = group.map(() => new AbortController());
    const runs = meshes.map((m, r) =>
      ringAllReduce(m, group, data[r]!, {
        runId: 0,
        step: 0,
        bucketElems: 1000,
        signal: controllers[r]!.signal,
      }).then(
        () => 'resolved',
        (err: unknown) => err,
      ),
    );
    await new Promise((r) => setTimeout(r, 15));
    const t0 = performance.now();
    for (const c of controllers) c.abort(new AbortError('cancelled by test'));
    const results = await Promise.all(runs);
    // Settles on the abort itself, not on some later timeout (loose bound: the machine is shared).
    expect(performance.now() - t0).toBeLessThan(500);
    for (const res of results) {
      expect(res).toBeInstanceOf(AbortError);
      expect((res as Error).message).toBe('cancelled by test');
    }
    for (const m of meshes) expect(m.pendingReceivers()).toBe(0);
  });

  it('rejects with PeerLostError on every survivor when a peer is lost mid-way', async () => {
    const h = newHub({ delayMs: () => 2 });
    const n = 5;
    const group = ids(n);
    const meshes = group.map((id) => h.mesh(id));
    h.linkAll(group); // every survivor hears of the loss over its own link (not only p2's neighbours)
    const data = inputs(n, 50_000, 8);
    const runs = meshes.map((m, r) =>
      ringAllReduce(m, group, data[r]!, { runId: 0, step: 0, bucketElems: 500 }).then(
        () => 'resolved',
        (err: unknown) => err,
      ),
    );
    await new Promise((r) => setTimeout(r, 10));
    h.kill('p2');
    const results = await Promise.all(runs);
    for (const [r, res] of results.entries()) {
      if (r === 2) {
        expect(res).toBeInstanceOf(Error);
        continue;
      }
      expect(res).toBeInstanceOf(PeerLostError);
      expect((res as PeerLostError).peerId).toBe('p2');
      expect(meshes[r]!.pendingReceivers()).toBe(0);
    }
  });

  it('rejects with ProtocolError when peers disagree on the length', async () => {
    const h = newHub();
    const group = ids(3);
    const meshes = group.map((id) => h.mesh(id));
    const lengths = [30, 30, 33];
    const results = await Promise.all(
      meshes.map((m, r) =>
        ringAllReduce(m, group, new Float32Array(lengths[r]!), {
          runId: 0,
          step: 0,
          bucketElems: 100,
          signal: AbortSignal.timeout(100),
        }).then(
          () => 'resolved',
          (err: unknown) => err,
        ),
      ),
    );
    expect(results.some((e) => e instanceof ProtocolError)).toBe(true);
    for (const m of meshes) expect(m.pendingReceivers()).toBe(0);
  });

  it('refuses a bad group or options with ConfigError', async () => {
    const h = newHub();
    const m = h.mesh('p0');
    const opts = { runId: 0, step: 0, bucketElems: 4 };
    await expect(ringAllReduce(m, ['p1', 'p2'], new Float32Array(4), opts)).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(ringAllReduce(m, ['p0', 'p1', 'p0'], new Float32Array(4), opts)).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(
      ringAllReduce(m, ['p0', 'p1'], new Float32Array(4), { ...opts, bucketElems: 0 }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      ringAllReduce(m, ['p0', 'p1'], new Float32Array(4), { ...opts, tagBase: 0xffff_ffff }),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

/** Wraps a mesh so every recvTensor reports +1 when it starts and -1 when it settles. */
function watchReceives(mesh: TestMesh, onChange: (key: TensorKey, delta: 1 | -1) => void): Mesh {
  return new Proxy(mesh, {
    get(target, prop, receiver) {
      if (prop === 'recvTensor') {
        return (peerId: string, key: TensorKey, opts?: { signal?: AbortSignal }): Promise<TensorMessage> => {
          onChange(key, 1);
          return target.recvTensor(peerId, key, opts).finally(() => onChange(key, -1));
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
