import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { OptimizerStateError, createOptimizer } from './optimizer.ts';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

describe('sgd', () => {
  it('plain sgd: p -= lr * g', () => {
    const opt = createOptimizer({ kind: 'sgd', momentum: 0 }, 0.1, 2);
    const p = f32(1, 2);
    opt.step(p, f32(0.5, -1));
    expect(Array.from(p)).toEqual([Math.fround(0.95), Math.fround(2.1)]);
    expect(opt.state()).toEqual([f32(1)]);
    expect(opt.steps).toBe(1);
  });

  it('momentum follows PyTorch: v = m v + g, p -= lr v', () => {
    const opt = createOptimizer({ kind: 'sgd', momentum: 0.9 }, 0.1, 1);
    const p = f32(1);
    opt.step(p, f32(0.5)); // v = 0.5, p = 1 - 0.05 = 0.95
    expect(p[0]).toBeCloseTo(0.95, 6);
    opt.step(p, f32(0.25)); // v = 0.45 + 0.25 = 0.7, p = 0.95 - 0.07 = 0.88
    expect(p[0]).toBeCloseTo(0.88, 6);
    expect(opt.state()[0]![0]).toBeCloseTo(0.7, 6);
  });

  it('the learning rate can change between steps and is validated', () => {
    const opt = createOptimizer({ kind: 'sgd', momentum: 0 }, 0.1, 1);
    opt.lr = 0.5;
    const p = f32(1);
    opt.step(p, f32(1));
    expect(p[0]).toBe(0.5);
    expect(() => (opt.lr = 0)).toThrow(ConfigError);
    expect(() => (opt.lr = Number.NaN)).toThrow(ConfigError);
  });
});

describe('adam', () => {
  it('matches hand-computed bias-corrected updates', () => {
    const opt = createOptimizer({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 0.01, 1);
    const p = f32(1);
    // t=1: m = 0.05, v = 0.00025; mhat = 0.5, vhat = 0.25; p -= 0.01 * 0.5 / (0.5 + 1e-8)
    opt.step(p, f32(0.5));
    expect(p[0]).toBeCloseTo(0.99, 7);
    // t=2: m = 0.045 + 0.025 = 0.07, v = 0.00024975 + 0.0000625 = 0.00031225
    // mhat = 0.07 / 0.19, vhat = 0.00031225 / 0.001999; p -= 0.01 * mhat / sqrt(vhat)
    opt.step(p, f32(0.25));
    const expected = 0.99 - (0.01 * (0.07 / 0.19)) / Math.sqrt(0.00031225 / 0.001999);
    expect(expected).toBeCloseTo(0.9806782, 6);
    expect(p[0]).toBeCloseTo(expected, 6);
    const [m, v, t] = opt.state();
    expect(m![0]).toBeCloseTo(0.07, 7);
    expect(v![0]).toBeCloseTo(0.00031225, 9);
    expect(Array.from(t!)).toEqual([2]);
  });

  it('first step moves each parameter by about lr against the sign of its gradient', () => {
    const opt = createOptimizer({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 0.001, 3);
    const p = f32(0, 0, 0);
    opt.step(p, f32(3, -0.002, 100));
    expect(p[0]).toBeCloseTo(-0.001, 7);
    expect(p[1]).toBeCloseTo(0.001, 7);
    expect(p[2]).toBeCloseTo(-0.001, 7);
  });
});

describe('state and load', () => {
  const configs = [
    { kind: 'sgd', momentum: 0.9 },
    { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  ] as const;

  for (const cfg of configs) {
    it(`${cfg.kind}: a loaded optimizer continues bit-identically`, () => {
      const n = 5;
      const grads = [0, 1, 2, 3].map((s) => Float32Array.from({ length: n }, (_, i) => Math.sin(s * 7 + i)));
      const a = createOptimizer(cfg, 0.01, n);
      const pa = Float32Array.from({ length: n }, (_, i) => i / n);
      for (const g of grads.slice(0, 3)) a.step(pa, g);
      const b = createOptimizer(cfg, 0.01, n);
      b.load(a.state());
      const pb = pa.slice();
      a.step(pa, grads[3]!);
      b.step(pb, grads[3]!);
      expect(Array.from(pb)).toEqual(Array.from(pa));
      expect(b.steps).toBe(a.steps);
    });
  }

  it('state() returns copies', () => {
    const opt = createOptimizer({ kind: 'sgd', momentum: 0.5 }, 0.1, 1);
    opt.step(f32(0), f32(1));
    opt.state()[0]![0] = 42;
    expect(opt.state()[0]![0]).toBe(1);
  });

  it('refuses mismatched buffers', () => {
    const sgd = createOptimizer({ kind: 'sgd', momentum: 0.9 }, 0.1, 2);
    expect(() => sgd.step(f32(1), f32(1))).toThrow(OptimizerStateError);
    expect(() => sgd.step(f32(1, 2), f32(1))).toThrow(OptimizerStateError);
    expect(() => sgd.load([])).toThrow(OptimizerStateError);
    expect(() => sgd.load([f32(1, 2, 3), f32(0)])).toThrow(OptimizerStateError);
    expect(() => sgd.load([f32(1, 2), f32(-1)])).toThrow(OptimizerStateError);
    const adam = createOptimizer({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 0.1, 2);
    expect(() => adam.load([f32(0, 0), f32(0, 0), f32(1.5)])).toThrow(OptimizerStateError);
    expect(sgd.steps).toBe(0);
  });

  it('refuses invalid configurations', () => {
    expect(() => createOptimizer({ kind: 'sgd', momentum: 1 }, 0.1, 2)).toThrow(ConfigError);
    expect(() => createOptimizer({ kind: 'sgd', momentum: 0 }, -1, 2)).toThrow(ConfigError);
    expect(() => createOptimizer({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 0 }, 0.1, 2)).toThrow(
      ConfigError,
    );
    expect(() => createOptimizer({ kind: 'sgd', momentum: 0 }, 0.1, -1)).toThrow(ConfigError);
  });
});
