import { describe, expect, it } from 'vitest';
import { frameStats } from './dashboard.ts';

describe('frameStats', () => {
  it('takes quantiles of the sorted intervals and counts the long ones', () => {
    const deltas = [16, 17, 120, 16, 18, 16, 51, 17, 16, 50];
    expect(frameStats(deltas)).toEqual({
      frames: 10,
      medianMs: 17,
      p90Ms: 120,
      p99Ms: 120,
      maxMs: 120,
      over50: 2,
    });
    expect(frameStats([])).toMatchObject({ frames: 0, over50: 0 });
    expect(frameStats([]).medianMs).toBeNaN();
  });
});
