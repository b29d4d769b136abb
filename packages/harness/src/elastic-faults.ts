// The harness's own elastic faults (the dashboard's coordinator sees them too and takes what it
// knows): which worker tab 'vanish' closes, and when 'join@K' opens one more.

/** What the session does to its worker tabs. */
export interface TabFaults {
  /** 'vanish': close the highest rank's tab; 'vanish-rank0': rank 0's (the leader's). */
  vanish: 'highest' | 'rank0' | null;
  /** 'join@K': open one more worker tab once K steps are done (the coordinator waits for it at K). */
  joinAfterStep: number | null;
}

export function tabFaults(faults: readonly string[] | undefined): TabFaults {
  const list = faults ?? [];
  const join = list.flatMap((f) => /^join@(\d+)$/.exec(f)?.[1] ?? []);
  return {
    vanish: list.includes('vanish-rank0') ? 'rank0' : list.includes('vanish') ? 'highest' : null,
    joinAfterStep: join.length > 0 ? Number(join[0]) : null,
  };
}

/** Index of the tab to close: the highest rank's, or rank 0's; the last tab when no rank is known. */
export function pickRankTab(ranks: readonly number[], which: 'highest' | 'rank0'): number {
  if (which === 'rank0') {
    const i = ranks.indexOf(0);
    return i >= 0 ? i : ranks.length - 1;
  }
  let best = ranks.length - 1;
  ranks.forEach((r, i) => {
    if (Number.isFinite(r) && !(ranks[best]! >= r)) best = i;
  });
  return best;
}
