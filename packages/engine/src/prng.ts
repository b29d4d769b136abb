// Seeded pseudo-random numbers written in TypeScript so that every backend, browser and machine
// draws the same sequence (initial parameters, shuffles and synthetic data must be identical
// bytes everywhere). Only integer ops, float64 arithmetic and Math.sqrt
// (correctly rounded by the spec), never Math.log/sin/pow (whose last bit may differ between engines).

// The generator itself (mulberry32) lives in @peertrain/base; these are the engine's helpers around it.

/** Mixes several integers into one 32-bit seed (murmur3's finalizer over a running hash). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * Approximately standard normal draws without transcendental functions: the sum of 12 uniforms
 * minus 6 (Irwin-Hall). Math.log/cos are not required to be correctly rounded, so Box-Muller could
 * differ in the last bit between JS engines, and synthetic data must be the same bytes on every
 * worker that generates it from the seed.
 */
export function normalish(rand: () => number): number {
  let s = 0;
  for (let i = 0; i < 12; i++) s += rand();
  return s - 6;
}

/** Fisher-Yates shuffle of `values` in place with the given generator. */
export function shuffleInPlace(values: Int32Array, rand: () => number): Int32Array {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = values[i]!;
    values[i] = values[j]!;
    values[j] = t;
  }
  return values;
}
