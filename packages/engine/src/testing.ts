// Helpers shared by the engine's tests (not exported from the package).
import { expect } from 'vitest';
// The union package registers tfjs's autodiff gradients (tf.grads), which the tests use as the
// reference; the engine itself never needs them: every layer has an explicit backward.
import '@tensorflow/tfjs';
import { mulberry32 } from '@peertrain/base';

/** Deterministic uniform values in [-scale, scale). */
export function randomArray(length: number, seed: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length }, () => (2 * rand() - 1) * scale);
}

/** max |a - b| <= tol * max(1, max |b|), with a readable failure. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ''): void {
  expect(a.length, `${what} length`).toBe(b.length);
  let maxDiff = 0;
  let maxRef = 1;
  let worst = -1;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= maxDiff)) {
      maxDiff = d;
      worst = i;
    }
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
  }
  expect(maxDiff / maxRef, `${what}: worst at ${worst}: ${a[worst]} vs ${b[worst]}`).toBeLessThanOrEqual(tol);
}
