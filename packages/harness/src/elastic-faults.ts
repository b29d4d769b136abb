// The harness's own elastic faults (the dashboard's coordinator sees them too and takes what it
// knows): which worker tab 'vanish' closes and when, and when 'join@K' opens one more.

/** What the session does to its worker tabs. */
export interface TabFaults {
  /**
   * 'vanish': close the highest rank's tab; 'vanish-rank0': rank 0's (the leader's); 'vanish-rankR@K':
   * rank R's (a number; in a pipeline ranks below the stage count are the stages).
   */
  vanish: VanishTarget | null;
  /** Steps done before the vanish fault closes its tab (3, or K of 'vanish-rankR@K'). */
  vanishAfterStep: number;
  /** 'join@K': open one more worker tab once K steps are done (the coordinator waits for it at K). */
  joinAfterStep: number | null;
}

/** Which tab the vanish fault closes: the highest rank's, rank 0's, or rank R's. */
export type VanishTarget = 'highest' | 'rank0' | number;

/** The vanish fault closes a worker tab once this step is done (unless 'vanish-rankR@K' says K). */
export const VANISH_AFTER_STEP = 3;

export function tabFaults(faults: readonly string[] | undefined): TabFaults {
  const list = faults ?? [];
  const join = list.flatMap((f) => /^join@(\d+)$/.exec(f)?.[1] ?? []);
  const at = list.flatMap((f) => /^vanish-rank(\d+)@(\d+)$/.exec(f) ?? []);
  const vanish =
    at.length > 0
      ? Number(at[1])
      : list.includes('vanish-rank0')
        ? 'rank0'
        : list.includes('vanish')
          ? 'highest'
          : null;
  return {
    vanish,
    vanishAfterStep: at.length > 0 ? Number(at[2]) : VANISH_AFTER_STEP,
    joinAfterStep: join.length > 0 ? Number(join[0]) : null,
  };
}

/** Index of the tab to close: the highest rank's, rank 0's or rank R's; the last tab when no rank is known. */
export function pickRankTab(ranks: readonly number[], which: VanishTarget): number {
  if (which !== 'highest') {
    const i = ranks.indexOf(which === 'rank0' ? 0 : which);
    return i >= 0 ? i : ranks.length - 1;
  }
  let best = ranks.length - 1;
  ranks.forEach((r, i) => {
    if (Number.isFinite(r) && !(ranks[best]! >= r)) best = i;
  });
  return best;
}
