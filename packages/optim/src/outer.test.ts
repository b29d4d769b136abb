import { mulberry32 } from '@peertrain/base';
import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { OptimizerStateError } from './optimizer.ts';
import { DILOCO_OUTER, createOuterOptimizer } from './outer.ts';

const rand = (n: number, seed: number): Float32Array => {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rnd() * 2 - 1);
};

describe('outer optimizer', () => {
  it('lr 1, momentum 0 gives exactly global - pseudoGrad (bit-exact), every step', () => {
    const opt = createOuterOptimizer({ lr: 1, momentum: 0 }, 1000);
    const global = rand(1000, 1);
    for (let s = 0; s < 3; s++) {
      const g = rand(1000, 10 + s);
      const want = global.map((p, i) => p - g[i]!); // a Float32Array: float32 subtraction
      opt.step(global, g);
      expect(new Uint32Array(global.buffer)).toEqual(new Uint32Array(want.buffer));
    }
    expect(opt.state()).toEqual([Float32Array.of(3)]);
  });

  it('defaults to DiLoCo: lr 0.7, Nesterov momentum 0.9', () => {
    const opt = createOuterOptimizer({}, 1);
    expect([opt.lr, opt.momentum, opt.nesterov]).toEqual([0.7, 0.9, true]);
    expect(DILOCO_OUTER).toEqual({ lr: 0.7, momentum: 0.9, nesterov: true });
    const p = Float32Array.of(1);
    opt.step(p, Float32Array.of(1)); // v = 1, update = 1 + 0.9 = 1.9, p = 1 - 1.33
    expect(p[0]).toBeCloseTo(1 - 0.7 * 1.9, 6);
    opt.step(p, Float32Array.of(0.5)); // v = 0.9 + 0.5 = 1.4, update = 0.5 + 1.26 = 1.76
    expect(p[0]).toBeCloseTo(1 - 0.7 * 1.9 - 0.7 * 1.76, 5);
    expect(opt.state()[0]![0]).toBeCloseTo(1.4, 6);
  });

  it('plain (heavy-ball) momentum when nesterov is false', () => {
    const opt = createOuterOptimizer({ lr: 0.5, momentum: 0.5, nesterov: false }, 1);
    const p = Float32Array.of(0);
    opt.step(p, Float32Array.of(1)); // v = 1
    opt.step(p, Float32Array.of(1)); // v = 1.5
    expect(p[0]).toBeCloseTo(-0.5 - 0.75, 6);
  });

  it('state round-trips: a restored optimizer continues bit-identically', () => {
    const a = createOuterOptimizer({}, 100);
    const pa = rand(100, 2);
    a.step(pa, rand(100, 3));
    const b = createOuterOptimizer({}, 100);
    b.load(a.state());
    const pb = pa.slice();
    const g = rand(100, 4);
    a.step(pa, g);
    b.step(pb, g);
    expect(pb).toEqual(pa);
    expect(b.steps).toBe(2);
  });

  it('refuses bad configs and sizes', () => {
    expect(() => createOuterOptimizer({ lr: 0 }, 1)).toThrow(ConfigError);
    expect(() => createOuterOptimizer({ momentum: 1 }, 1)).toThrow(ConfigError);
    expect(() => createOuterOptimizer({}, -1)).toThrow(ConfigError);
    const opt = createOuterOptimizer({}, 2);
    expect(() => opt.step(new Float32Array(2), new Float32Array(3))).toThrow(OptimizerStateError);
    expect(() => opt.load([new Float32Array(2)])).toThrow(OptimizerStateError);
    expect(() => opt.load([new Float32Array(3), Float32Array.of(0)])).toThrow(OptimizerStateError);
  });
});
