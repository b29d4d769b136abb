// What dashboard-check/reload.ts does and prints; shared with reload.e2e.test.ts (importing
// reload.ts would run it).

export const RELOAD_ROOM = 'reload-check';
export const RELOAD_WORKERS = 2;

/** The run typed into the form: data parallel all-reduce (checkpointed every 10 steps by the dashboard). */
export const RELOAD_FORM = { workers: '2', model: 'mlp', dataset: 'synthetic', steps: '100' } as const;

export interface ReloadCheckResult {
  /** How the dashboard went away: reloaded, or closed and the room's URL opened in a new tab. */
  mode: 'reload' | 'close';
  /** The marker the interrupted page left in localStorage (its ranks: peer ids by rank). */
  marker: {
    room: string;
    since: string;
    ranks: string[];
    config: { steps: number; checkpointEvery: number };
  };
  /** The newest checkpoint step in IndexedDB when the page was reloaded, and the paused step. */
  checkpointStep: number;
  pausedAt: number;
  /** The URL before and after the reload (the same room). */
  urls: { before: string; after: string };
  /** The resumed page's banner. */
  banner: string;
  /** Phase pill at the end, and the progress bar's step and total. */
  finalPhase: string;
  finalStep: number;
  totalSteps: number;
  /** What the worker pages showed while the dashboard was away (phase text of each). */
  workersWhileAway: string[];
  /** Report JSON and weights.bin of the uninterrupted run and of the resumed one. */
  whole: { report: string; weights: string };
  resumed: { report: string; weights: string };
  screenshot: string;
  dashboardErrors: string[];
  workerErrors: string[];
  ms: { uninterrupted: number; resumed: number; total: number };
}
