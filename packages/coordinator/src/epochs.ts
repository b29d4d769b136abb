import type { ToWorker } from '@peertrain/protocol';
import type { StepDoneMsg } from './intake.ts';

/*
 * Elastic runs (config.elastic): a member lost mid-run ends the epoch instead of the run. The
 * survivors (in their original rank order) form the next epoch and redo every step that not all of
 * them have reported, from the state committed before it. A peer that arrives mid-run joins at a
 * step boundary: it takes the next rank after every rank so far, and the epoch it starts redoes from
 * that boundary (members that ran ahead roll back), its first member streaming it the state. The
 * A member dropped for silence (heartbeats.ts) that speaks again joins the same way at its own rank.
 * The driver keeps the ranks (the report's workers, the leader evaluating); this file keeps who is
 * still in, which stepDone messages count, and the list of changes for the report.
 */

export type EpochMsg = Extract<ToWorker, { type: 'epoch' }>;

/** One membership change, as the report lists it. */
export interface MembershipChangeRecord {
  /** The step the new epoch redoes from. */
  step: number;
  epoch: number;
  cause: string;
  peerId: string;
}

/** stepDone messages per step, by original rank (the driver's map). */
export type StepDoneLog = Map<number, Map<number, StepDoneMsg>>;

export class ElasticEpochs {
  /** Ranks still in, ascending (original ranks, then joiners in the order they came; readmitted members at their own rank). */
  private live: number[];
  /** Peer ids by rank: the original ranks, then every joiner. */
  private readonly ranks: string[];
  /** Members told of the newest epoch that have not acknowledged it: their stepDone is old. */
  private readonly awaitingAck = new Set<string>();
  readonly changes: MembershipChangeRecord[] = [];
  epoch: number;

  constructor(
    private readonly runId: number,
    /** Peer ids by original rank. */
    ranks: readonly string[],
    firstEpoch: number,
    /** Members of the first epoch: the first `members` ranks (an elastic pipeline's stages; the rest are spares). */
    members = ranks.length,
    /**
     * The step an epoch may start at, for a step the members have to redo: itself (every step is a
     * boundary), or for DiLoCo the first step of its round (a round is redone whole).
     */
    private readonly boundary: (step: number) => number = (step) => step,
  ) {
    this.ranks = [...ranks];
    this.live = ranks.map((_, r) => r).slice(0, members);
    this.epoch = firstEpoch;
  }

  /** Peer ids by rank: the original ranks, then every joiner (the report's workers). */
  everyRank(): readonly string[] {
    return this.ranks;
  }

  /** Whether a peer may join at `step` (DiLoCo: a round's first step). */
  joinsAt(step: number): boolean {
    return this.boundary(step) === step;
  }

  /** Peer ids of the current members, in original rank order. */
  members(): string[] {
    return this.live.map((r) => this.ranks[r]!);
  }

  isMember(peerId: string): boolean {
    return this.live.some((r) => this.ranks[r] === peerId);
  }

  /**
   * `peerId` was lost while the barrier waits for step `waiting` (every earlier step is recorded).
   * Returns the epoch message for the survivors, or null when `peerId` was not a member. Steps
   * from the returned fromStep on lose what the old epoch reported for them.
   */
  lose(
    peerId: string,
    cause: string,
    waiting: number,
    done: StepDoneLog,
    nextEpoch: number,
  ): EpochMsg | null {
    const rank = this.ranks.indexOf(peerId);
    if (rank < 0 || !this.live.includes(rank)) return null;
    this.live = this.live.filter((r) => r !== rank);
    // The first step not every survivor reported: a survivor that reported it committed it, and
    // one that did not may hold a half-finished all-reduce; all of them redo it.
    let fromStep = waiting;
    while (this.live.every((r) => done.get(fromStep)?.has(r))) fromStep++;
    // A round-based method redoes from the round's start: steps recorded in it keep their first losses.
    fromStep = this.boundary(fromStep);
    return this.begin(fromStep, done, nextEpoch, { step: fromStep, epoch: nextEpoch, cause, peerId });
  }

  /**
   * Methods whose workers redo nothing (ps-async): `peerId` leaves the members while the barrier
   * waits for step `waiting`, and nothing the others reported is void. Returns the new epoch (the
   * survivors learn who is in; none redoes a step), or null when `peerId` was not a member.
   */
  drop(peerId: string, cause: string, waiting: number, nextEpoch: number): EpochMsg | null {
    const rank = this.ranks.indexOf(peerId);
    if (rank < 0 || !this.live.includes(rank)) return null;
    this.live = this.live.filter((r) => r !== rank);
    this.epoch = nextEpoch;
    this.changes.push({ step: waiting, epoch: nextEpoch, cause, peerId });
    return { type: 'epoch', runId: this.runId, epoch: nextEpoch, peers: this.members(), fromStep: waiting };
  }

  /**
   * `peerId` joins at the step boundary `step` (every earlier step is recorded): it takes rank
   * `rank` (the next after every rank so far, or its own rank when a dropped member comes back,
   * which keeps `live` ascending and the leader the lowest rank) and the new epoch redoes from `step`, so members
   * that already ran it roll back and the joiner contributes to it. Returns the epoch message for
   * the members, the joiner among them and in `joiners`.
   */
  join(peerId: string, rank: number, step: number, done: StepDoneLog, nextEpoch: number): EpochMsg {
    if (this.ranks[rank] === peerId && !this.live.includes(rank)) {
      // A member dropped earlier (its tab froze, then thawed) comes back at its own rank.
      this.live = [...this.live, rank].sort((a, b) => a - b);
    } else if (rank === this.ranks.length) {
      this.ranks.push(peerId);
      this.live.push(rank);
    } else throw new RangeError(`joiner rank ${rank}, expected ${this.ranks.length}`);
    const msg = this.begin(step, done, nextEpoch, { step, epoch: nextEpoch, cause: 'joined', peerId });
    return { ...msg, joiners: [peerId] };
  }

  /**
   * Elastic pipelines: `spare` (a rank that is not a member) takes `peerId`'s place among the members
   * (its stage: members are listed in stage order) and the new epoch redoes from `fromStep`, the
   * step after the newest complete stage snapshot. Null when `peerId` is not a member.
   */
  replace(
    peerId: string,
    spare: string,
    cause: string,
    fromStep: number,
    done: StepDoneLog,
    nextEpoch: number,
  ): EpochMsg | null {
    const rank = this.ranks.indexOf(peerId);
    const at = this.live.indexOf(rank);
    const spareRank = this.ranks.indexOf(spare);
    if (at < 0 || spareRank < 0 || this.live.includes(spareRank)) return null;
    this.live[at] = spareRank;
    return this.begin(fromStep, done, nextEpoch, { step: fromStep, epoch: nextEpoch, cause, peerId });
  }

  /** The members of epoch `epoch` redo from `fromStep`: what the old epoch reported from there is void. */
  private begin(
    fromStep: number,
    done: StepDoneLog,
    epoch: number,
    change: MembershipChangeRecord,
  ): EpochMsg {
    this.epoch = epoch;
    for (const step of [...done.keys()]) if (step >= fromStep) done.delete(step);
    this.awaitingAck.clear();
    for (const id of this.members()) this.awaitingAck.add(id);
    this.changes.push(change);
    return { type: 'epoch', runId: this.runId, epoch, peers: this.members(), fromStep };
  }

  /** A member took epoch `epoch`. */
  ack(peerId: string, epoch: number): void {
    if (epoch === this.epoch) this.awaitingAck.delete(peerId);
  }

  /** Whether a stepDone from `peerId` counts: a member's, sent after it took the current epoch. */
  counts(peerId: string): boolean {
    return this.isMember(peerId) && !this.awaitingAck.has(peerId);
  }

  /** Every member reported `step` in the current epoch. */
  stepDone(step: number, done: StepDoneLog): boolean {
    const m = done.get(step);
    return m !== undefined && this.live.every((r) => m.has(r));
  }
}
