import { describe, expect, it } from 'vitest';
import {
  formatBandwidth,
  formatBytes,
  formatCount,
  formatEta,
  formatGflops,
  formatLoss,
  formatMs,
  formatPercent,
  formatRate,
  formatShard,
} from './format.ts';

describe('format', () => {
  it('bytes in SI units with 3 significant figures', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.00 kB');
    expect(formatBytes(1_234_567)).toBe('1.23 MB');
    expect(formatBytes(45_600_000)).toBe('45.6 MB');
    expect(formatBytes(987_000_000_000)).toBe('987 GB');
    expect(formatBytes(5e15)).toBe('5000 TB');
    expect(formatBytes(null)).toBe('–');
    expect(formatBytes(-1)).toBe('–');
  });

  it('ETA as m:ss or h:mm:ss', () => {
    expect(formatEta(0)).toBe('0:00');
    expect(formatEta(59_400)).toBe('0:59');
    expect(formatEta(65_000)).toBe('1:05');
    expect(formatEta(3_725_000)).toBe('1:02:05');
    expect(formatEta(null)).toBe('–');
    expect(formatEta(Infinity)).toBe('–');
  });

  it('rates, times and numbers', () => {
    expect(formatRate(1234.4, 'samples/s')).toBe('1,234 samples/s');
    expect(formatRate(12.345, 'samples/s')).toBe('12.3 samples/s');
    expect(formatRate(NaN, 'x')).toBe('–');
    expect(formatMs(0.4219)).toBe('0.42 ms');
    expect(formatMs(12.34)).toBe('12.3 ms');
    expect(formatMs(1234.5)).toBe('1,235 ms');
    expect(formatGflops(15.26)).toBe('15.3');
    expect(formatGflops(0.351)).toBe('0.35');
    expect(formatLoss(0.123456)).toBe('0.1235');
    expect(formatLoss(NaN)).toBe('NaN');
    expect(formatPercent(0.9731, 1)).toBe('97.3%');
    expect(formatShard({ start: 20_000, count: 20_000 })).toBe('20,000–39,999 (20,000)');
    expect(formatShard(null)).toBe('–');
  });

  it('bandwidth as bytes per second, a dash when unknown', () => {
    expect(formatBandwidth(21_300_000)).toBe('21.3 MB/s');
    expect(formatBandwidth(null)).toBe('–');
  });

  it('formatCount: a count at a glance', () => {
    expect([0, 980, 999.6, 1000, 203_520, 999_700, 1_234_567, 4.2e9].map(formatCount)).toEqual([
      '0',
      '980',
      '1.00k',
      '1.00k',
      '204k',
      '1.00M',
      '1.23M',
      '4.20G',
    ]);
    expect([-1, NaN, null, undefined].map(formatCount)).toEqual(['–', '–', '–', '–']);
  });
});
