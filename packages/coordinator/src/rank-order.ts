// A resumed run keeps its members at their ranks. The dashboard remembers the interrupted run's
// peer ids by rank (apps/dashboard roomResume.ts); when the same peers say hello again after a
// reload, the run takes them in that order. For data parallelism any order gives the same numbers
// (every rank gets the checkpoint's state, and a rank's batches depend on the rank, not the peer);
// keeping it keeps the peer table, the trace and a worker's shard what they were.
import type { PeerRecord } from './membership.ts';

/**
 * `chosen` with the peers of `prefer` first, in its order (rank 0 first), then the others in the
 * order given. `prefer` empty or absent: `chosen` as it is.
 */
export function inRankOrder(chosen: readonly PeerRecord[], prefer?: readonly string[]): PeerRecord[] {
  if (!prefer || prefer.length === 0) return [...chosen];
  const at = (p: PeerRecord): number => {
    const i = prefer.indexOf(p.peerId);
    return i < 0 ? prefer.length : i;
  };
  // Array.prototype.sort is stable: peers not in `prefer` keep their relative order.
  return [...chosen].sort((a, b) => at(a) - at(b));
}
