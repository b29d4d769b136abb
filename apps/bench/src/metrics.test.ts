import { describe, expect, it } from 'vitest';
import {
  algBandwidth,
  busBandwidth,
  clockOffset,
  cpuBusy,
  mbPerSec,
  median,
  parseProcStat,
  ratio,
  ringBytesPerWorker,
} from './metrics.ts';
import { expectedSum, fillRank } from './pattern.ts';

describe('bandwidth formulas', () => {
  it('MB/s uses 10^6 bytes and milliseconds', () => {
    expect(mbPerSec(20e6, 1000)).toBe(20);
    expect(mbPerSec(5e6, 250)).toBe(20);
    expect(mbPerSec(1, 0)).toBeNaN();
  });

  it('a ring worker sends 2(N-1)/N of S', () => {
    const S = 8 * 2 ** 20;
    expect(ringBytesPerWorker(S, 2)).toBe(S);
    expect(ringBytesPerWorker(S, 4)).toBe(1.5 * S);
    expect(ringBytesPerWorker(S, 3)).toBeCloseTo((4 / 3) * S, 6);
    expect(ringBytesPerWorker(S, 1)).toBe(0);
  });

  it('busbw = algbw * 2(N-1)/N', () => {
    const S = 12e6;
    expect(algBandwidth(S, 1000)).toBe(12);
    expect(busBandwidth(S, 2, 1000)).toBe(12);
    expect(busBandwidth(S, 3, 1000)).toBeCloseTo(16, 10);
    expect(busBandwidth(S, 4, 500)).toBe(36);
    for (const n of [2, 3, 4, 8]) {
      expect(busBandwidth(S, n, 700) / algBandwidth(S, 700)).toBeCloseTo((2 * (n - 1)) / n, 12);
    }
  });

  it('ratio is NaN against a missing baseline', () => {
    expect(ratio(14, 20)).toBeCloseTo(0.7, 12);
    expect(ratio(14, Number.NaN)).toBeNaN();
    expect(ratio(14, 0)).toBeNaN();
  });
});

describe('median', () => {
  it('handles odd, even and empty lists without reordering the input', () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe('clockOffset', () => {
  it('takes the sample with the shortest round trip', () => {
    const r = clockOffset([
      { before: 0, page: 1_000_050, after: 40 },
      { before: 100, page: 1_000_103, after: 104 },
      { before: 200, page: 1_000_230, after: 220 },
    ]);
    expect(r.offsetMs).toBe(1_000_001);
    expect(r.errorMs).toBe(2);
  });

  it('refuses an empty list', () => {
    expect(() => clockOffset([])).toThrow(RangeError);
  });
});

describe('/proc/stat', () => {
  const a = 'cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1\n';
  const b = 'cpu  250 0 100 850 50 0 0 0 0 0\ncpu0 1 1 1 1 1 0 0 0 0 0\n';

  it('counts idle and iowait as idle', () => {
    expect(parseProcStat(a)).toEqual({ busy: 150, total: 1000 });
  });

  it('gives the busy fraction between two readings', () => {
    const x = parseProcStat(a);
    const y = parseProcStat(b);
    if (!x || !y) throw new Error('parse failed');
    expect(cpuBusy(x, y)).toBeCloseTo(200 / 250, 12);
    expect(cpuBusy(x, x)).toBeNaN();
  });

  it('returns null without an aggregate cpu line', () => {
    expect(parseProcStat('cpu0 1 2 3 4\n')).toBeNull();
    expect(parseProcStat('cpu  x y z w\n')).toBeNull();
  });
});

describe('all-reduce input pattern', () => {
  it('sums exactly to expectedSum for every element', () => {
    for (const n of [2, 3, 4]) {
      const ranks = Array.from({ length: n }, (_, r) => fillRank(new Float32Array(29), r));
      const sum = new Float32Array(29);
      for (const d of ranks) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] ?? 0) + (d[i] ?? 0);
      for (let i = 0; i < sum.length; i++) expect(sum[i]).toBe(expectedSum(i, n));
    }
  });
});
