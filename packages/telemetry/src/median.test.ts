import { describe, expect, it } from 'vitest';
import { RunningMedian } from './median.ts';

/** The plain definition: sort, take the middle (the mean of the two middle values when even). */
function sortedMedian(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

describe('RunningMedian', () => {
  it('equals the sorted median after every value, for random, sorted, reversed and repeated series', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const series = [
      Array.from({ length: 500 }, rand),
      Array.from({ length: 200 }, (_, i) => i),
      Array.from({ length: 200 }, (_, i) => 200 - i),
      Array.from({ length: 101 }, (_, i) => i % 3),
    ];
    for (const xs of series) {
      const m = new RunningMedian();
      expect(m.median).toBeNaN();
      xs.forEach((x, i) => {
        m.add(x);
        expect(m.median).toBe(sortedMedian(xs.slice(0, i + 1)));
      });
      expect(m.count).toBe(xs.length);
    }
  });

  it('ignores NaN', () => {
    const m = new RunningMedian();
    m.add(NaN);
    m.add(0.3);
    expect(m.count).toBe(1);
    expect(m.median).toBe(0.3);
  });
});
