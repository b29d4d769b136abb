import { describe, expect, it } from 'vitest';
import { pickRankTab, tabFaults } from './elastic-faults.ts';

describe('the harness elastic faults', () => {
  it('reads vanish, vanish-rank0 and join@K', () => {
    expect(tabFaults(['vanish'])).toEqual({ vanish: 'highest', vanishAfterStep: 3, joinAfterStep: null });
    expect(tabFaults(['vanish-rank0', 'join@20'])).toEqual({
      vanish: 'rank0',
      vanishAfterStep: 3,
      joinAfterStep: 20,
    });
    expect(tabFaults(undefined)).toEqual({ vanish: null, vanishAfterStep: 3, joinAfterStep: null });
    expect(tabFaults(['vanish-rank2@12'])).toEqual({ vanish: 2, vanishAfterStep: 12, joinAfterStep: null });
  });

  it('picks the highest rank’s tab or rank 0’s; the last when ranks are unknown', () => {
    expect(pickRankTab([1, 2, 0], 'highest')).toBe(1);
    expect(pickRankTab([1, 2, 0], 'rank0')).toBe(2);
    expect(pickRankTab([NaN, NaN], 'rank0')).toBe(1);
    expect(pickRankTab([NaN, 1, NaN], 'highest')).toBe(1);
    expect(pickRankTab([3, 2, 0, 1], 2)).toBe(1);
  });
});
