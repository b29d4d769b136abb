import { mulberry32 } from '@peertrain/base';

import { describe, expect, it } from 'vitest';
import { relativeError } from './codec.ts';
import { CompressionError } from './errors.ts';
import { PowerSgd } from './powersgd.ts';

const rand = (n: number, seed: number): Float32Array => {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rnd() * 2 - 1);
};

/** Element-wise sum of equal-length buffers, in order (what any all-reduce returns). */
const sumOf = (xs: Float32Array[]): Float32Array => {
  const out = new Float32Array(xs[0]?.length ?? 0);
  for (const x of xs) for (let i = 0; i < out.length; i++) out[i] = out[i]! + x[i]!;
  return out;
};

/** One PowerSGD step of every worker, all-reducing with sumOf; returns each worker's output. */
function step(workers: PowerSgd[], grads: Float32Array[]): Float32Array[] {
  const p = sumOf(workers.map((w, i) => w.computeP(grads[i]!)));
  for (const w of workers) w.setReducedP(p);
  const q = sumOf(workers.map((w) => w.computeQ()));
  return workers.map((w) => {
    const out = new Float32Array(w.length);
    w.setReducedQ(q, out);
    return out;
  });
}

/** A [rows, cols] matrix of rank `rank`, then a bias of `cols`. */
function lowRank(rows: number, cols: number, rank: number, seed: number): Float32Array {
  const u = rand(rows * rank, seed);
  const v = rand(cols * rank, seed + 1);
  const out = new Float32Array(rows * cols + cols);
  for (let i = 0; i < rows; i++)
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let j = 0; j < rank; j++) s += u[i * rank + j]! * v[c * rank + j]!;
      out[i * cols + c] = s;
    }
  out.set(rand(cols, seed + 2), rows * cols);
  return out;
}

describe('PowerSGD', () => {
  const shapes = [[40, 30], [30]];

  it('lays out P, Q and the uncompressed tensors', () => {
    const w = new PowerSgd({ shapes: [[40, 30], [30], [4, 4], [2, 3, 5]], rank: 2, seed: 1 });
    expect(w.layout).toEqual({
      matrices: [
        { rows: 40, cols: 30 },
        { rows: 6, cols: 5 },
      ],
      rawElems: 30 + 16,
    });
    expect(w.pLength).toBe(40 * 2 + 6 * 2 + 46);
    expect(w.qLength).toBe(30 * 2 + 5 * 2);
  });

  it('recovers a sum of rank <= r exactly, biases exactly, identical on every worker', () => {
    const workers = [1, 2, 3].map(() => new PowerSgd({ shapes, rank: 4, seed: 42 }));
    // Every worker's matrix is rank 1 along the same factors times a different scalar: the sum is rank 1.
    const base = lowRank(40, 30, 1, 5);
    const grads = [1, -2, 0.5].map((s, w) => {
      const g = base.map((v) => v * s);
      g.set(rand(30, 10 + w), 1200);
      return g;
    });
    const exact = sumOf(grads);
    const outs = step(workers, grads);
    expect(relativeError(outs[0]!.subarray(0, 1200), exact.subarray(0, 1200))).toBeLessThan(1e-5);
    expect(outs[0]!.subarray(1200)).toEqual(exact.subarray(1200));
    for (const out of outs) expect(out).toEqual(outs[0]);
  });

  it('error feedback: outputs so far + residuals = inputs so far; the error shrinks with rank', () => {
    const errors: number[] = [];
    for (const rank of [1, 4]) {
      const workers = [1, 2].map(() => new PowerSgd({ shapes, rank, seed: 3 }));
      const sent = new Float64Array(1230);
      const inputs = new Float64Array(1230);
      let err = 0;
      for (let round = 0; round < 20; round++) {
        // A rank-3 signal (same subspace, scale changing every round), plus 1% noise: rank 4 captures it, rank 1 cannot.
        const grads = workers.map((_, w) => {
          const g = lowRank(40, 30, 3, 7).map((v) => v * (1 + ((round + w) % 3)));
          const noise = rand(1230, 100 * round + w);
          return g.map((v, i) => v + 0.01 * noise[i]!);
        });
        const exact = sumOf(grads);
        const [out] = step(workers, grads);
        err += relativeError(out!, exact) / 20;
        for (let i = 0; i < 1230; i++) {
          sent[i]! += out![i]!;
          inputs[i]! += exact[i]!;
        }
      }
      errors.push(err);
      const residual = sumOf(workers.map((w) => w.state()[1]!));
      for (let i = 0; i < 1200; i++) {
        const off = Math.abs(sent[i]! + residual[i]! - inputs[i]!);
        if (off > 1e-4) expect.fail(`element ${i}: off by ${off}`);
      }
    }
    expect(errors[1]!).toBeLessThan(errors[0]! / 2);
    expect(errors[1]!).toBeLessThan(0.2);
  });

  it('refuses calls out of order and buffers of the wrong size', () => {
    const w = new PowerSgd({ shapes, rank: 2, seed: 1 });
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(CompressionError);
        return (err as CompressionError).code;
      }
      return 'none';
    };
    expect(code(() => w.computeQ())).toBe('bad-state');
    expect(code(() => w.computeP(new Float32Array(3)))).toBe('bad-state');
    const p = w.computeP(rand(1230, 1));
    expect(code(() => w.computeP(rand(1230, 1)))).toBe('bad-state');
    expect(code(() => w.setReducedP(p.subarray(1)))).toBe('bad-state');
    w.reset();
    expect(code(() => w.computeP(Float32Array.from({ length: 1230 }, () => NaN)))).toBe('non-finite-input');
    expect(code(() => new PowerSgd({ shapes, rank: 0, seed: 1 }))).toBe('bad-state');
  });
});
