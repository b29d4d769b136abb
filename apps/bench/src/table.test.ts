import { describe, expect, it } from 'vitest';
import { fmt, fmtBytes, fmtElems, fmtPercent, fmtRatio, markdownTable } from './table.ts';

describe('markdownTable', () => {
  it('pads columns, right-aligns where asked and escapes pipes', () => {
    const t = markdownTable(
      ['name', 'MB/s'],
      [
        ['raw', '21.5'],
        ['a|b', '3.0'],
      ],
      ['left', 'right'],
    );
    expect(t.split('\n')).toEqual([
      '| name | MB/s |',
      '| ---- | ---: |',
      '| raw  | 21.5 |',
      '| a\\|b |  3.0 |',
    ]);
  });

  it('refuses a row with more cells than columns', () => {
    expect(() => markdownTable(['a'], [['x', 'y']])).toThrow(RangeError);
  });

  it('fills missing cells and keeps a minimum width of 3', () => {
    const t = markdownTable(['a', 'b'], [['x']]);
    expect(t.split('\n')).toEqual(['| a   | b   |', '| --- | --- |', '| x   |     |']);
  });
});

describe('number formats', () => {
  it('prints dashes for missing values', () => {
    expect(fmt(Number.NaN)).toBe('-');
    expect(fmt(undefined)).toBe('-');
    expect(fmtRatio(Number.POSITIVE_INFINITY)).toBe('-');
    expect(fmtPercent(Number.NaN)).toBe('-');
  });

  it('formats rates, ratios and percentages', () => {
    expect(fmt(21.456)).toBe('21.5');
    expect(fmt(21.456, 0)).toBe('21');
    expect(fmtRatio(0.8567)).toBe('0.86x');
    expect(fmtPercent(0.734)).toBe('73%');
  });

  it('formats bytes and element counts with binary units', () => {
    expect(fmtBytes(262_144)).toBe('256 KiB');
    expect(fmtBytes(8 * 2 ** 20)).toBe('8 MiB');
    expect(fmtBytes(1536)).toBe('1.5 KiB');
    expect(fmtBytes(100)).toBe('100 B');
    expect(fmtElems(65_536)).toBe('64K');
    expect(fmtElems(4 * 2 ** 20)).toBe('4M');
    expect(fmtElems(1000)).toBe('1000');
  });
});
