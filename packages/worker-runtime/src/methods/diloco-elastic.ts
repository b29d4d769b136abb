// Elastic DiLoCo (config.elastic, sync diloco): local steps that survive a closed tab and take in a
// new one. Workers meet only at a round's end, so a round is the unit an epoch redoes: the
// coordinator aligns every epoch's fromStep to a round's first step (its ElasticEpochs boundary),
// and a member rolls back to the state it held there (G, the outer optimizer's and the inner
// optimizers' state; L = G at a round's start) and trains the round again with the new members.
//
// The global batch of a round never changes (elasticPolicy 'fixed-global', as elastic.ts): the N0
// original ranks are "virtual ranks", each with its own inner trajectory L_v (its shard, its inner
// optimizer), split among the M members by virtualRanks. At a round's end a member sums its
// trajectories' displacements (G - L_v), scales the sum by M / N0, and the members' mean of that
// over the ring is the mean over the N0 trajectories: the outer step of the undisturbed run. With
// M = N0 every member holds its own rank alone and the arithmetic is plain DiLoCo's, bit for bit.
// A member that takes over a lost rank starts that rank's inner optimizer afresh at the round's
// start (its state left with the lost tab): with plain SGD inside (no momentum, no Adam) the run
// is the undisturbed one up to summation order; with a stateful inner optimizer the adopted
// trajectory departs from it.
//
// A joiner (an epoch's `joiners`) takes G and the outer optimizer's state at the round's start from
// the epoch's first member (join-state.ts), and holds whatever virtual ranks its index gives it
// (none while the members outnumber N0).
//
// Not here: overlapOuter (an exchange in flight across rounds), top-k and PowerSGD (their error
// feedback would have to roll back too, and a lost worker's residual leaves with it); the config
// refuses those combinations. Evaluations are the leader's alone (leads()).
import type { Compressor } from '@peertrain/compress';
import { allReduceMean } from '@peertrain/collective';
import { createOptimizer, createOuterOptimizer } from '@peertrain/optim';
import type { Optimizer, OuterOptimizer } from '@peertrain/optim';
import {
  ElasticStateError,
  giveState,
  inboxOf,
  redoAfterLoss,
  relinkRing,
  stateSource,
  stepEpoch,
  takeState,
  virtualRanks,
} from '../elastic.ts';
import type { EpochInbox, EpochMsg } from '../elastic.ts';
import { timedGradients, timedUpdate } from './data.ts';
import { exchangeCompressor } from './exchange.ts';
import type { MethodContext, MethodRun, StepOutcome } from './types.ts';

/** Round starts kept for rollback: a member may have ended the round the slowest is still in. */
const SNAPSHOTS = 2;

/** One virtual rank's inner trajectory: its local parameters and its inner optimizer. */
interface Trajectory {
  rank: number;
  local: Float32Array; // L_v [P]
  inner: Optimizer;
}

/** The state at a round's start: what a rollback restores. */
interface RoundStart {
  global: Float32Array;
  outer: Float32Array[];
  /** Inner optimizer state by virtual rank. */
  inner: Map<number, Float32Array[]>;
}

/** The round that step `step` belongs to starts here. */
export function roundStart(step: number, innerSteps: number): number {
  return step - (step % innerSteps);
}

/** Whether step `step` ends its round: every H-th step, and the run's last (the run ends synchronized). */
export function endsRound(step: number, c: { innerSteps: number; steps: number }): boolean {
  return (step + 1) % c.innerSteps === 0 || step === c.steps - 1;
}

class ElasticDilocoRun implements MethodRun {
  readonly #ctx: MethodContext;
  readonly #inbox: EpochInbox;
  readonly #global: Float32Array; // G [P]
  readonly #outer: OuterOptimizer;
  readonly #compressor: Compressor | null;
  /** The original world size N0: the round's batch is N0 trajectories whoever computes them. */
  readonly #n0: number;
  readonly #snapshots = new Map<number, RoundStart>();
  #trajectories: Trajectory[];
  #peers: readonly string[];
  #epoch = 0;
  /** Steps applied (inner steps count; a round's last one once its exchange is done). */
  #committed = 0;

  constructor(ctx: MethodContext) {
    const { config } = ctx.assign;
    this.#ctx = ctx;
    this.#inbox = inboxOf(ctx.assign);
    this.#global = ctx.session.initParams();
    this.#outer = createOuterOptimizer(
      { lr: config.outerLr, momentum: config.outerMomentum, nesterov: config.outerNesterov },
      this.#global.length,
    );
    this.#compressor = exchangeCompressor(ctx, this.#global.length);
    this.#n0 = ctx.assign.allShards.length;
    this.#peers = ctx.assign.peers;
    // A joiner's trajectories come with its first epoch; an original rank starts with its own.
    this.#trajectories = this.#inbox.joining ? [] : [this.#trajectory(ctx.assign.rank)];
  }

  get paramBytes(): number {
    return this.#global.byteLength * (1 + this.#trajectories.length);
  }

  get evalParams(): Float32Array {
    return this.#global;
  }

  async step(step: number): Promise<StepOutcome> {
    if (this.#inbox.pending) await this.#takeEpoch(this.#inbox.pending);
    const epochAbort = stepEpoch(this.#inbox);
    if (step !== this.#committed)
      throw new ElasticStateError(`asked for step ${step}, committed ${this.#committed}`);
    const { config } = this.#ctx.assign;
    if (step % config.innerSteps === 0) this.#snapshot(step);
    const { loss, computeMs } = await this.#innerSteps(step);
    if (endsRound(step, config)) await this.#endRound(step, epochAbort);
    this.#committed = step + 1;
    return { loss, computeMs };
  }

  /** As diloco.ts: a round's reports go together, evaluations wait for a round's end. */
  holdReport = (step: number): boolean => !endsRound(step, this.#ctx.assign.config);
  evalReady = (after: number): boolean => after % this.#ctx.assign.config.innerSteps === 0;
  beforeEval = (): Promise<void> => Promise.resolve();

  dispose(): void {
    this.#snapshots.clear();
    this.#inbox.arrived = null;
  }

  /** A fresh trajectory of virtual rank `rank` at G (a round's start). */
  #trajectory(rank: number): Trajectory {
    const { config } = this.#ctx.assign;
    const inner = createOptimizer(config.optimizer, config.lr, this.#global.length);
    return { rank, local: this.#global.slice(), inner };
  }

  #snapshot(step: number): void {
    const inner = new Map(this.#trajectories.map((t) => [t.rank, t.inner.state()]));
    this.#snapshots.set(step, { global: this.#global.slice(), outer: this.#outer.state(), inner });
    for (const at of this.#snapshots.keys()) if (this.#snapshots.size > SNAPSHOTS) this.#snapshots.delete(at);
  }

  /**
   * One inner step of every trajectory this member holds. The loss is their mean losses' sum times
   * M / N0, so the coordinator's mean over the M members' reports is the mean over the N0 batches.
   */
  async #innerSteps(step: number): Promise<{ loss: number; computeMs: number }> {
    const { session, spans, assign, signal } = this.#ctx;
    const share = this.#peers.length / this.#n0;
    const own = this.#trajectories.length === 1 && this.#trajectories[0]!.rank === assign.rank;
    if (own) {
      const t = this.#trajectories[0]!;
      const { loss, grads, computeMs } = await timedGradients(this.#ctx, t.local, step); // prefetched
      const updateMs = timedUpdate(this.#ctx, step, () => t.inner.step(t.local, grads));
      return { loss: loss * share, computeMs: computeMs + updateMs };
    }
    if (this.#trajectories.length > 0 && !session.gradientsOf)
      throw new ElasticStateError('this compute engine cannot compute another rank’s batch');
    const t0 = spans.now();
    let loss = 0;
    for (const t of this.#trajectories) {
      const g = await session.gradientsOf!(t.local, step, assign.allShards[t.rank]!, { signal });
      t.inner.step(t.local, g.grads);
      loss += g.loss * share;
    }
    const t1 = spans.now();
    spans.record('compute', t0, t1 - t0, { step });
    return { loss, computeMs: t1 - t0 };
  }

  /**
   * The round's end: the members' mean of (M / N0) sum_v (G - L_v), the outer step, every L_v = G.
   * A lost member fails the exchange (or a frozen one's hop times out) before the coordinator's
   * epoch comes: the step waits for it and is redone (from the round's start) under it.
   */
  async #endRound(step: number, epochAbort: AbortSignal): Promise<void> {
    const { spans, assign, signal } = this.#ctx;
    const g = this.#global;
    const delta = new Float32Array(g.length);
    for (const t of this.#trajectories) for (let i = 0; i < g.length; i++) delta[i]! += g[i]! - t.local[i]!;
    const m = this.#peers.length;
    if (m !== this.#n0) for (let i = 0; i < delta.length; i++) delta[i]! *= m / this.#n0;
    if (m > 1) {
      const t0 = spans.now();
      try {
        epochAbort.throwIfAborted(); // an epoch came during the round's inner steps
        const stats = await allReduceMean(this.#ctx.mesh, this.#peers, delta, {
          runId: assign.runId,
          step,
          // Each epoch's exchange of a round has its own keys: an aborted attempt's frames never match.
          microBatch: this.#epoch,
          bucketElems: assign.config.bucketElems,
          algorithm: assign.config.allReduce,
          signal: AbortSignal.any([signal, epochAbort]),
          now: () => spans.now(),
          onPhase: (kind, startMs, endMs) => spans.record(kind, startMs, endMs - startMs, { step }),
          ...(this.#compressor !== null ? { compressor: this.#compressor } : {}),
        });
        spans.record('allreduce', t0, spans.now() - t0, { step, bytes: stats.bytesSent });
      } catch (err) {
        await redoAfterLoss(err, this.#inbox, signal, `round ending at step ${step}`, this.#epoch, true);
      }
    }
    const t0 = spans.now();
    this.#outer.step(g, delta);
    spans.record('optimizer', t0, spans.now() - t0, { step });
    for (const t of this.#trajectories) t.local.set(g);
  }

  /** Rolls back to the round's start at msg.fromStep, re-splits the virtual ranks, links the ring. */
  async #takeEpoch(msg: EpochMsg): Promise<void> {
    const { assign, mesh } = this.#ctx;
    const { innerSteps } = assign.config;
    const inbox = this.#inbox;
    inbox.pending = null;
    if (msg.fromStep % innerSteps !== 0)
      throw new ElasticStateError(`epoch ${msg.epoch} redoes from step ${msg.fromStep}, not a round's start`);
    // Inner optimizer states to restore: the round start's after a rollback; none otherwise (the
    // trajectories kept hold theirs already).
    let inner: ReadonlyMap<number, Float32Array[]> = new Map();
    if (inbox.joining) {
      await takeState({ ctx: this.#ctx, params: this.#global, optimizer: this.#outer }, msg);
      this.#committed = msg.fromStep;
      inbox.joining = false;
    } else if (this.#committed > msg.fromStep) {
      const snap = this.#snapshots.get(msg.fromStep);
      if (!snap)
        throw new ElasticStateError(
          `no state at the round's start ${msg.fromStep} (committed ${this.#committed})`,
        );
      this.#global.set(snap.global);
      this.#outer.load(snap.outer);
      inner = snap.inner;
      this.#committed = msg.fromStep;
    }
    if (this.#committed !== msg.fromStep)
      throw new ElasticStateError(
        `epoch ${msg.epoch} redoes step ${msg.fromStep}, committed ${this.#committed}`,
      );
    this.#peers = msg.peers;
    this.#epoch = msg.epoch;
    inbox.tell?.({ type: 'epochAck', runId: assign.runId, epoch: msg.epoch });
    const index = msg.peers.indexOf(mesh.localId);
    if (index < 0) throw new ElasticStateError(`epoch ${msg.epoch} does not list this worker`);
    // Trajectories this member held keep their inner state (as it was at the round's start).
    const held = new Map(this.#trajectories.map((t) => [t.rank, t]));
    this.#trajectories = virtualRanks(this.#n0, msg.peers.length, index).map((rank) => {
      const kept = held.get(rank);
      if (!kept) return this.#trajectory(rank);
      kept.local.set(this.#global);
      const state = inner.get(rank);
      if (state) kept.inner.load(state);
      return kept;
    });
    // step(fromStep) takes the round's start again, under the new split.
    for (const at of [...this.#snapshots.keys()]) if (at >= msg.fromStep) this.#snapshots.delete(at);
    if (stateSource(msg) === mesh.localId)
      for (const joiner of msg.joiners ?? [])
        await giveState({ ctx: this.#ctx, params: this.#global, optimizer: this.#outer }, msg, joiner);
    await relinkRing(this.#ctx, this.#peers, inbox.tell);
  }
}

/** The DiLoCo method's MethodRun for elastic runs (diloco.ts hands them here). */
export function elasticDiloco(ctx: MethodContext): MethodRun {
  return new ElasticDilocoRun(ctx);
}
