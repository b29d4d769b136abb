import { describe, expect, it } from 'vitest';
import { commOverlap } from './overlap.ts';

const comm = (startMs: number, durMs: number) => ({ lane: 'comm' as const, startMs, durMs });
const compute = (startMs: number, durMs: number) => ({ lane: 'compute' as const, startMs, durMs });

describe('commOverlap', () => {
  it('all exposed when communication follows computation', () => {
    expect(commOverlap([compute(0, 10), comm(10, 5)])).toEqual({ commMs: 5, hiddenMs: 0, exposedMs: 5 });
  });

  it('counts overlapping comm spans once and the part under compute as hidden', () => {
    // comm union [4, 14) = 10 ms; compute union [0, 6) + [8, 10) -> hidden [4, 6) + [8, 10) = 4 ms
    const r = commOverlap([compute(0, 6), compute(8, 2), comm(4, 6), comm(6, 8), comm(5, 1)]);
    expect(r).toEqual({ commMs: 10, hiddenMs: 4, exposedMs: 6 });
  });

  it('nothing to hide without communication', () => {
    expect(commOverlap([compute(0, 3)])).toEqual({ commMs: 0, hiddenMs: 0, exposedMs: 0 });
  });
});
