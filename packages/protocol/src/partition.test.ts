import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { parsePartition } from './partition.ts';

describe('parsePartition', () => {
  it('parses inclusive ranges into half-open ones', () => {
    expect(parsePartition('0-2,3-5,6-8', 9, 3)).toEqual([
      { first: 0, end: 3 },
      { first: 3, end: 6 },
      { first: 6, end: 9 },
    ]);
    expect(parsePartition(' 0 , 1 - 4 ', 5, 2)).toEqual([
      { first: 0, end: 1 },
      { first: 1, end: 5 },
    ]);
  });

  it.each([
    ['0-2,4-8', 9, 2, /stage 1 starts at layer 4, not 3 \(ranges must be contiguous\)/],
    ['0-3,3-8', 9, 2, /stage 1 starts at layer 3, not 4/],
    ['1-8', 9, 1, /stage 0 starts at layer 1, not 0/],
    ['0-2,3-5', 9, 2, /the last stage ends at layer 5, not 8/],
    ['0-4,5-8', 9, 3, /2 ranges for 3 stages/],
    ['0-9', 9, 1, /'0-9' reaches layer 9; the model has layers 0-8/],
    ['3-1,2-8', 9, 2, /'3-1' ends before it starts/],
    ['0-2,,3-8', 9, 2, /'' is not a layer range/],
    ['a-b', 9, 1, /'a-b' is not a layer range/],
    ['0-2;3-8', 9, 2, /'0-2;3-8' is not a layer range/],
  ])('%s over %i layers, %i stages -> ConfigError', (text, layers, stages, why) => {
    expect(() => parsePartition(text, layers, stages)).toThrow(ConfigError);
    expect(() => parsePartition(text, layers, stages)).toThrow(why);
  });
});
