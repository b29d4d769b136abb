// A worker's step reports (stepDone) on their way to the coordinator. Every send on the
// coordinator's data channel costs the tab's main thread: 0.3-1 ms a message in Chromium on this
// machine (2 shared cores, 3 tabs), tens of ms when the send waits on a descheduled network thread,
// 7-8% of a DiLoCo worker's time when every inner step sent its own. Reports that nobody waits for
// (a local step's: the coordinator's barrier window covers the round) are held and sent together
// as one `stepsDone` message (one send), at the round's end or when the oldest is REPORT_HOLD_MS old.
import { MAX_REPORTS_PER_MESSAGE } from '@peertrain/protocol';
import type { ToCoordinator } from '@peertrain/protocol';

type StepDoneMsg = Extract<ToCoordinator, { type: 'stepDone' }>;
type ReportMsg = Extract<ToCoordinator, { type: 'stepDone' | 'stepsDone' }>;

/**
 * How long a held report may wait: the dashboard's progress lags at most this much, and the
 * coordinator's stall check (15 s without a step reported) never sees a slow round as a stall.
 */
export const REPORT_HOLD_MS = 1_000;

export class StepReports {
  readonly #tell: (msg: ReportMsg) => void;
  readonly #now: () => number;
  readonly #maxHoldMs: number;
  #held: StepDoneMsg[] = [];
  /** When the oldest held report was added. */
  #since = 0;

  constructor(tell: (msg: ReportMsg) => void, now: () => number, maxHoldMs = REPORT_HOLD_MS) {
    this.#tell = tell;
    this.#now = now;
    this.#maxHoldMs = maxHoldMs;
  }

  /** Queues `msg` behind the held ones; sends them all unless `hold` and the oldest is recent. */
  add(msg: StepDoneMsg, hold: boolean): void {
    if (this.#held.length === 0) this.#since = this.#now();
    this.#held.push(msg);
    if (!hold || this.#now() - this.#since >= this.#maxHoldMs) this.flush();
  }

  /**
   * Sends what is held, in order: one report as `stepDone`, several as `stepsDone` (at most
   * MAX_REPORTS_PER_MESSAGE a message). The driver calls it before anything else goes to the
   * coordinator (evaluations, the reference, checkpoints) and before it waits for a grant: the
   * coordinator grants from the reports it has.
   */
  flush(): void {
    const held = this.#held;
    this.#held = [];
    if (held.length === 1) this.#tell(held[0]!);
    else
      for (let i = 0; i < held.length; i += MAX_REPORTS_PER_MESSAGE)
        this.#tell({ type: 'stepsDone', reports: held.slice(i, i + MAX_REPORTS_PER_MESSAGE) });
  }

  /** Forgets the held reports of `step` and later (an elastic epoch redoes them). */
  dropFrom(step: number): void {
    this.#held = this.#held.filter((m) => m.step < step);
  }

  /** Reports held now (tests). */
  get pending(): number {
    return this.#held.length;
  }
}
