import { expect } from 'vitest';
import { CompressionError } from './errors.ts';

/** Runs fn and returns the CompressionError code it throws (fails the test otherwise). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CompressionError);
    return (err as CompressionError).code;
  }
  return expect.fail('expected a CompressionError');
}
