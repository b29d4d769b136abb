import {
  CompressionError,
  ErrorFeedback,
  createCompressor,
  decode,
  encodeTopk,
  relativeError,
} from '@peertrain/compress';
import type { Compressor } from '@peertrain/compress';
import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { compressedAllReduce, compressedTagSpan } from './compressed.ts';
import { ringElemsSent } from './ring.ts';
import type { AllReduceStats } from './ring.ts';
import { mulberry32 } from '@peertrain/base';
import { ids, inputs, useTestHubs } from './testMesh.ts';
import type { TestMesh } from './testMesh.ts';

const newHub = useTestHubs();
/** Float64 element-wise sum. */
function exactSum(xs: Float32Array[]): Float64Array {
  const out = new Float64Array(xs[0]?.length ?? 0);
  for (const x of xs) for (let i = 0; i < out.length; i++) out[i]! += x[i]!;
  return out;
}

function expectIdentical(data: Float32Array[]): void {
  const first = new Uint32Array(data[0]!.buffer);
  for (const [r, d] of data.entries()) {
    const bits = new Uint32Array(d.buffer);
    const i = bits.findIndex((v, j) => v !== first[j]);
    if (i >= 0) expect.fail(`peer ${r} differs from peer 0 at element ${i}`);
  }
}

interface Run {
  data: Float32Array[];
  stats: AllReduceStats[];
  meshes: TestMesh[];
}

/** One compressed all-reduce of `xs` (copied) on a fresh hub, each peer with its compressor. */
async function runAll(
  xs: Float32Array[],
  compressors: Compressor[],
  bucketElems?: number,
  step = 1,
  jitterSeed = 1,
  jitterMs = 1,
): Promise<Run> {
  const h = newHub({ jitterMs, random: mulberry32(jitterSeed) });
  const group = ids(xs.length);
  const meshes = group.map((id) => h.mesh(id));
  const data = xs.map((x) => x.slice());
  const stats = await Promise.all(
    meshes.map((mesh, r) =>
      compressedAllReduce(mesh, group, data[r]!, {
        runId: 1,
        step,
        compressor: compressors[r]!,
        ...(bucketElems === undefined ? {} : { bucketElems }),
      }),
    ),
  );
  for (const m of meshes) {
    expect(m.pendingReceivers()).toBe(0);
    expect(m.bufferedMessages()).toBe(0);
  }
  return { data, stats, meshes };
}

/** Bytes sent by rank r relative to the fp32 ring of the same length. */
const ratio = (run: Run, length: number): number[] =>
  run.stats.map((s, r) => s.bytesSent / (4 * ringElemsSent(length, run.stats.length, r)));

describe.each([2, 3, 4])('compressedAllReduce over %i peers', (n) => {
  const length = 20_000;

  it('fp16: identical on every peer, error ~ 2^-11 per hop, <= 0.51x of the fp32 ring', async () => {
    const xs = inputs(n, length, n);
    const run = await runAll(
      xs,
      xs.map(() => ({ kind: 'fp16' })),
      8192,
    );
    expectIdentical(run.data);
    expect(relativeError(run.data[0]!, exactSum(xs))).toBeLessThan(n * 2 ** -11);
    for (const q of ratio(run, length)) expect(q).toBeLessThanOrEqual(0.51);
    run.meshes.forEach((m, r) => expect(m.stats().total.bytesSent).toBe(run.stats[r]!.bytesSent));
  });

  it('int8: identical on every peer, unbiased error within bounds, <= 0.26x of the fp32 ring', async () => {
    const xs = inputs(n, length, 10 + n);
    const compressors = xs.map((_, r) => createCompressor({ kind: 'int8' }, { length, seed: 100 + r }));
    const run = await runAll(xs, compressors);
    expectIdentical(run.data);
    const exact = exactSum(xs);
    expect(relativeError(run.data[0]!, exact)).toBeLessThan(0.02);
    let bias = 0;
    for (let i = 0; i < length; i++) bias += run.data[0]![i]! - exact[i]!;
    expect(Math.abs(bias / length)).toBeLessThan(1e-3);
    for (const q of ratio(run, length)) expect(q).toBeLessThanOrEqual(0.26);
  });

  it('int8: a run is reproducible whatever order the buckets finish in', async () => {
    const xs = inputs(n, 5000, 30 + n);
    const once = async (jitterSeed: number): Promise<Float32Array> => {
      const cs = xs.map((_, r) => createCompressor({ kind: 'int8' }, { length: 5000, seed: 100 + r }));
      return (await runAll(xs, cs, 500, 1, jitterSeed, 8)).data[0]!;
    };
    expect(await once(2)).toEqual(await once(3));
  });

  it('topk: every peer sums the same sparse payloads in rank order, <= 0.03x of the fp32 ring', async () => {
    const xs = inputs(n, length, 20 + n);
    const compressors = xs.map(() => createCompressor({ kind: 'topk', fraction: 0.01 }, { length, seed: 1 }));
    const run = await runAll(xs, compressors);
    expectIdentical(run.data);
    // The same selections made locally, summed in rank order, give the same bits.
    const expected = new Float32Array(length);
    for (const x of xs) {
      const y = decode(encodeTopk(x, 0.01, new ErrorFeedback(length)));
      for (let i = 0; i < length; i++) expected[i] = expected[i]! + y[i]!;
    }
    expect(run.data[0]).toEqual(expected);
    for (const q of ratio(run, length)) expect(q).toBeLessThanOrEqual(0.03);
  });

  it('topk: over rounds, outputs + every residual = every input (error feedback)', async () => {
    const compressors = ids(n).map(() =>
      createCompressor({ kind: 'topk', fraction: 0.05 }, { length: 500, seed: 1 }),
    );
    const sent = new Float64Array(500);
    const total = new Float64Array(500);
    for (let round = 0; round < 10; round++) {
      const xs = inputs(n, 500, 1000 * n + round);
      const run = await runAll(xs, compressors, undefined, round);
      exactSum(xs).forEach((v, i) => (total[i]! += v));
      run.data[0]!.forEach((v, i) => (sent[i]! += v));
    }
    const residual = exactSum(
      compressors.map((c) => (c.kind === 'topk' ? c.feedback.residual : new Float32Array(0))),
    );
    for (let i = 0; i < 500; i++) expect(Math.abs(sent[i]! + residual[i]! - total[i]!)).toBeLessThan(1e-4);
  });

  it('powersgd: two fp32 factor rings, identical on every peer, exact on a low-rank sum', async () => {
    const [rows, cols, rank] = [60, 50, 2];
    const rnd = mulberry32(n);
    const u = Float32Array.from({ length: rows }, () => rnd() - 0.5);
    const v = Float32Array.from({ length: cols }, () => rnd() - 0.5);
    // Peer r holds (r + 1) u v^T and a bias: the sum is rank 1, which rank 2 recovers.
    const xs = ids(n).map((_, r) => {
      const x = new Float32Array(rows * cols + cols);
      for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) x[i * cols + c] = (r + 1) * u[i]! * v[c]!;
      for (let c = 0; c < cols; c++) x[rows * cols + c] = rnd();
      return x;
    });
    const shapes = [[rows, cols], [cols]];
    const compressors = xs.map((_, r) =>
      createCompressor(
        { kind: 'powersgd', rank },
        { length: xs[0]!.length, seed: r, powersgdSeed: 77, shapes },
      ),
    );
    const run = await runAll(xs, compressors, 64);
    expectIdentical(run.data);
    expect(relativeError(run.data[0]!, exactSum(xs))).toBeLessThan(1e-5);
    const fp32Ring = 4 * ringElemsSent(rows * rank + cols, n, 0) + 4 * ringElemsSent(cols * rank, n, 0);
    expect(run.stats[0]!.bytesSent).toBeLessThanOrEqual(fp32Ring + 8 * n);
    expect(run.stats[0]!.bytesSent / (4 * ringElemsSent(xs[0]!.length, n, 0))).toBeLessThan(0.1);
  });
});

describe('compressedAllReduce: edges and faults', () => {
  it('none is the plain ring; one peer leaves data untouched', async () => {
    const xs = inputs(3, 1000, 5);
    const run = await runAll(
      xs,
      xs.map(() => ({ kind: 'none' })),
    );
    expectIdentical(run.data);
    expect(relativeError(run.data[0]!, exactSum(xs))).toBeLessThan(1e-6);
    const solo = await runAll([xs[0]!], [{ kind: 'fp16' }]);
    expect(solo.data[0]).toEqual(xs[0]);
    expect(solo.stats[0]!.bytesSent).toBe(0);
  });

  it('tiny tensors (fewer elements than peers) and several buckets', async () => {
    for (const length of [1, 3, 1001]) {
      const xs = inputs(4, length, length);
      const run = await runAll(
        xs,
        xs.map(() => ({ kind: 'fp16' })),
        100,
      );
      expectIdentical(run.data);
      expect(relativeError(run.data[0]!, exactSum(xs))).toBeLessThan(4 * 2 ** -11);
    }
  });

  it('a garbage payload from a peer is refused with CompressionError, nothing left pending', async () => {
    const h = newHub();
    const [a, b] = [h.mesh('p0'), h.mesh('p1')];
    h.link('p0', 'p1');
    const data = new Float32Array(100).fill(1);
    const done = compressedAllReduce(a, ['p0', 'p1'], data, {
      runId: 1,
      step: 1,
      compressor: { kind: 'fp16' },
    });
    // p1 answers reduce-scatter round 0 (tag 0) with a truncated payload.
    await b.sendTensor('p0', {
      runId: 1,
      step: 1,
      microBatch: null,
      tag: 0,
      dtype: 'uint8',
      shape: [5],
      data: new Uint8Array(5),
    });
    await expect(done).rejects.toThrow(CompressionError);
    await expect(done).rejects.toThrow(/from p1/);
    expect(a.pendingReceivers()).toBe(0);
  });

  it('rejects an aborted signal, a bad group and a tag range past u32', async () => {
    const h = newHub();
    const m = h.mesh('p0');
    const base = { runId: 1, step: 1, compressor: { kind: 'fp16' } as const };
    await expect(
      compressedAllReduce(m, ['p0', 'p1'], new Float32Array(4), { ...base, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(compressedAllReduce(m, ['p1', 'p2'], new Float32Array(4), base)).rejects.toThrow(
      ConfigError,
    );
    await expect(
      compressedAllReduce(m, ['p0', 'p1'], new Float32Array(4), { ...base, tagBase: 2 ** 32 - 1 }),
    ).rejects.toThrow(ConfigError);
    expect(compressedTagSpan(4, 10, { kind: 'topk', fraction: 0.1, feedback: new ErrorFeedback(10) })).toBe(
      3,
    );
  });
});
