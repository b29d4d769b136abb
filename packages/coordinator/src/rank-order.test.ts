import { describe, expect, it } from 'vitest';
import type { PeerRecord } from './membership.ts';
import { inRankOrder } from './rank-order.ts';

const peers = (...ids: string[]): PeerRecord[] => ids.map((peerId) => ({ peerId }) as PeerRecord);
const ids = (ps: readonly PeerRecord[]): string[] => ps.map((p) => p.peerId);

describe('inRankOrder', () => {
  it('puts the remembered members at their ranks, the others after them in arrival order', () => {
    expect(ids(inRankOrder(peers('b', 'x', 'a', 'y'), ['a', 'b']))).toEqual(['a', 'b', 'x', 'y']);
    // A remembered member that did not come back leaves no hole.
    expect(ids(inRankOrder(peers('c', 'b'), ['a', 'b', 'c']))).toEqual(['b', 'c']);
  });

  it('keeps the arrival order without a preference', () => {
    expect(ids(inRankOrder(peers('b', 'a')))).toEqual(['b', 'a']);
    expect(ids(inRankOrder(peers('b', 'a'), []))).toEqual(['b', 'a']);
  });
});
