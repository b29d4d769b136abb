// Elastic data parallel over the ring (config.elastic, sync allreduce). A lost member ends the
// epoch: the coordinator sends `epoch { peers, fromStep }` to the survivors; each aborts the step in
// flight, rolls back to the state committed after step fromStep - 1, re-forms the ring over `peers`
// and redoes from fromStep. The global batch of a step never changes: it is the union of the N0
// original ranks' batches (N0 = assign.peers.length), and an epoch's M members split those N0
// "virtual ranks" among themselves. Each member sums its virtual ranks' mean gradients, the ring
// sums over the members, and every member divides by N0: the mean over the N0 batches, equal to the
// undisturbed run up to summation order (with M = N0 the arithmetic is the plain run's, bit for bit).
// A peer that joins mid-run is assigned with `joining` (its rank past the N0 original ranks, N0 =
// allShards.length): the epoch that lists it among `joiners` brings it in at a step boundary, its
// first member streams it the state committed before fromStep (join-state.ts), and from then on it
// is a member like any other (with more members than N0, the first members compute no batch).
//
// That is config.elasticPolicy 'fixed-global' (the default). 'scaled-lr' keeps each member's own
// batch instead: the ring sums the M members' mean gradients, divides by M, and the learning rate
// is config.lr * M / N0 (the linear scaling rule; the lost ranks' samples are skipped, so the run
// departs from the undisturbed one at the first loss; with M = N0 it is the same run, bit for bit).
import { asError, deadline } from '@peertrain/base';
import { allReduceSum } from '@peertrain/collective';
import type { Optimizer } from '@peertrain/optim';
import { PHASE_TIMEOUTS, PeerLostError, PhaseTimeoutError, joinState } from '@peertrain/protocol';
import type { ToCoordinator, ToWorker } from '@peertrain/protocol';
import type { RunState, WorkerCore } from './core.ts';
import { poke } from './core.ts';
import { recvState, sendState, unpackState } from './join-state.ts';
import { linkCounts, openLinks } from './links.ts';
import { dataParallelState, timedGradients, timedUpdate } from './methods/data.ts';
import { ringLinks } from './methods/exchange.ts';
import type { Assign, MethodContext, MethodRun } from './methods/types.ts';

export type EpochMsg = Extract<ToWorker, { type: 'epoch' }>;

/** How long re-forming the ring over a new epoch's members may take. */
const RELINK_TIMEOUT_MS = PHASE_TIMEOUTS.relink.ms;
/** How long streaming the state to (or from) a joiner may take, links included. */
const JOIN_STATE_TIMEOUT_MS = PHASE_TIMEOUTS.joinState.ms;
/** States kept for rollback: the coordinator's window lets a worker commit at most 2 steps past fromStep - 1. */
const SNAPSHOTS = 3;

/** The worker's state and the coordinator's step bookkeeping disagree: the run cannot go on. */
export class ElasticStateError extends Error {
  override readonly name = 'ElasticStateError';
}

/** The step in flight was aborted by a new epoch: the run loop rewinds and asks for the step again. */
export class StepRedoError extends Error {
  override readonly name = 'StepRedoError';
}

/** What the control handler and the method share for one run (keyed by the run's assign object). */
export interface EpochInbox {
  /** The newest epoch not taken yet. */
  pending: EpochMsg | null;
  /** The run loop goes back to this step (the lowest fromStep since it last looked). */
  redoFrom: number | null;
  /** Aborted when an epoch arrives: ends the exchange in flight. Replaced each time. */
  abort: AbortController;
  /** Wakes a step that waits for the epoch after its exchange failed. */
  arrived: (() => void) | null;
  tell: ((msg: ToCoordinator) => void) | null;
  /** The newest epoch's members (null before the first epoch message): peers[0] leads. */
  members: readonly string[] | null;
  /** A joiner that has not taken its state yet: its first epoch sets where it starts. */
  joining: boolean;
  /**
   * Set by a method whose workers redo nothing (ps-async): an epoch only says who is still in, and
   * goes here instead of rolling anything back.
   */
  onMembers?: (peers: readonly string[]) => void;
}

const inboxes = new WeakMap<Assign, EpochInbox>();

export function inboxOf(assign: Assign): EpochInbox {
  let inbox = inboxes.get(assign);
  if (!inbox) {
    inbox = {
      pending: null,
      redoFrom: null,
      abort: new AbortController(),
      arrived: null,
      tell: null,
      members: null,
      joining: assign.joining === true,
    };
    inboxes.set(assign, inbox);
  }
  return inbox;
}

/** The coordinator's `epoch` message for the current run: ends the step in flight and wakes the loop. */
export function onEpoch(core: WorkerCore, msg: EpochMsg): void {
  const run = core.current;
  if (!run || run.assign.runId !== msg.runId || !run.assign.config.elastic) return;
  const inbox = inboxOf(run.assign);
  if (inbox.pending && inbox.pending.epoch >= msg.epoch) return;
  if (inbox.onMembers) {
    inbox.members = msg.peers;
    return inbox.onMembers(msg.peers);
  }
  const led = leads(run, core.mesh.localId);
  inbox.tell = (m) => {
    core.tell(m);
    if (m.type === 'links') core.update({ links: m.links }); // the page's links row too
  };
  inbox.pending = msg;
  inbox.members = msg.peers;
  inbox.redoFrom = Math.min(inbox.redoFrom ?? Infinity, msg.fromStep);
  // The leader was lost after every step was done: its successor owes the final evaluation (and
  // with it the trained parameters). No step runs, so the epoch is never taken: nothing to roll back.
  const end = run.endStep;
  if (!led && leads(run, core.mesh.localId) && msg.fromStep >= end && !run.pendingEvals.includes(end))
    run.pendingEvals.push(end);
  const aborted = inbox.abort;
  inbox.abort = new AbortController();
  aborted.abort(new StepRedoError(`epoch ${msg.epoch} redoes from step ${msg.fromStep}`));
  inbox.arrived?.();
  poke(run);
}

/**
 * The abort signal of the epoch a step runs in, taken as the step starts (after it took any
 * pending epoch). An epoch that arrives later, while the step computes, aborts it, and the step's
 * exchange stops before it starts: `inbox.abort` read at the exchange would be the new epoch's,
 * never aborted, and the exchange would wait on the old members (a lost one among them) while the
 * others redo the step under the new epoch.
 */
export function stepEpoch(inbox: EpochInbox): AbortSignal {
  return inbox.abort.signal;
}

/**
 * Called by the run loop before it looks for work: after an epoch, the next step is its fromStep
 * (evaluations queued for later steps go: they come due again when the redone steps complete).
 * Returns that step, or null when no epoch came.
 */
export function rewind(run: RunState): number | null {
  const inbox = inboxes.get(run.assign);
  if (inbox?.redoFrom == null) return null;
  // A joiner starts where its epoch does; a member goes back to it.
  const from = inbox.joining && inbox.pending ? inbox.pending.fromStep : inbox.redoFrom;
  inbox.redoFrom = null;
  run.completed = inbox.joining ? from : Math.min(run.completed, from);
  run.pendingEvals = run.pendingEvals.filter((after) => after <= from);
  return run.completed;
}

/**
 * Whether this worker leads the run: evaluates, sends the trained parameters, trains the reference.
 * Rank 0 until an epoch drops it; then the lowest surviving original rank (an epoch lists its
 * members in original rank order), so losing rank 0 loses nothing it alone did.
 */
export function leads(run: RunState, localId: string): boolean {
  const members = inboxes.get(run.assign)?.members ?? run.assign.peers;
  return members[0] === localId;
}

/** The original ranks member `index` of `members` computes: a contiguous block of 0..n0-1. */
export function virtualRanks(n0: number, members: number, index: number): number[] {
  const lo = Math.floor((index * n0) / members);
  const hi = Math.floor(((index + 1) * n0) / members);
  return Array.from({ length: hi - lo }, (_, i) => lo + i);
}

/** Parameters and optimizer state before one step (= committed after the step before). */
interface Snapshot {
  params: Float32Array;
  optimizer: Float32Array[];
}

/** One worker's side of an elastic run: what the steps and the epochs change. */
interface Elastic {
  ctx: MethodContext;
  params: Float32Array;
  optimizer: Optimizer;
  inbox: EpochInbox;
  /** The original world size: the global batch is n0 ranks' batches whoever computes them. */
  n0: number;
  /** scaled-lr: each member computes its own batch only, and the lr follows the members. */
  scaledLr: boolean;
  peers: readonly string[];
  epoch: number;
  /** Steps applied to `params`. */
  committed: number;
  /** State before each of the last SNAPSHOTS steps, by step. */
  snapshots: Map<number, Snapshot>;
}

/** The elastic all-reduce method's MethodRun (allreduce.ts hands elastic runs here). */
export function elasticAllReduce(ctx: MethodContext): MethodRun {
  const { params, optimizer } = dataParallelState(ctx);
  const inbox = inboxOf(ctx.assign);
  const e: Elastic = {
    ctx,
    params,
    optimizer,
    inbox,
    n0: ctx.assign.allShards.length,
    scaledLr: ctx.assign.config.elasticPolicy === 'scaled-lr',
    peers: ctx.assign.peers,
    epoch: 0,
    committed: 0,
    snapshots: new Map(),
  };
  return {
    paramBytes: params.byteLength,
    evalParams: params,
    async step(step) {
      if (inbox.pending) await takeEpoch(e, inbox.pending);
      const epochAbort = stepEpoch(inbox);
      if (step !== e.committed)
        throw new ElasticStateError(`asked for step ${step}, committed ${e.committed}`);
      e.snapshots.set(step, { params: params.slice(), optimizer: optimizer.state() });
      e.snapshots.delete(step - SNAPSHOTS);
      const { loss, grads, computeMs } = await gradientSum(e, step);
      try {
        epochAbort.throwIfAborted();
        await globalMean(e, grads, step, AbortSignal.any([ctx.signal, epochAbort]));
      } catch (err) {
        // A lost member's ring fails (or a frozen one's hop times out) before the epoch arrives.
        await redoAfterLoss(err, inbox, ctx.signal, `step ${step}`, e.epoch, true);
      }
      // Only a complete exchange is applied: the committed state is never half a step.
      const updateMs = timedUpdate(ctx, step, () => optimizer.step(params, grads));
      e.committed = step + 1;
      return { loss, computeMs: computeMs + updateMs };
    },
    beforeEval: () => Promise.resolve(),
    dispose: () => {
      e.snapshots.clear();
      inbox.arrived = null;
    },
  };
}

/** Rolls back to the state before msg.fromStep, acknowledges, and links the new ring. */
async function takeEpoch(e: Elastic, msg: EpochMsg): Promise<void> {
  const { mesh, assign } = e.ctx;
  e.inbox.pending = null;
  if (e.inbox.joining) {
    await takeState(e, msg);
    e.committed = msg.fromStep;
    e.inbox.joining = false;
  }
  if (e.committed > msg.fromStep) {
    const snap = e.snapshots.get(msg.fromStep);
    if (!snap) throw new ElasticStateError(`no state before step ${msg.fromStep} (committed ${e.committed})`);
    e.params.set(snap.params);
    e.optimizer.load(snap.optimizer);
    e.committed = msg.fromStep;
  }
  if (e.committed !== msg.fromStep)
    throw new ElasticStateError(`epoch ${msg.epoch} redoes step ${msg.fromStep}, committed ${e.committed}`);
  e.peers = msg.peers;
  e.epoch = msg.epoch;
  // The lr of every step from fromStep on (redone ones included): a rollback restores no lr.
  if (e.scaledLr) e.optimizer.lr = (assign.config.lr * e.peers.length) / e.n0;
  // Every stepDone sent after this belongs to the new epoch (the control link is ordered).
  e.inbox.tell?.({ type: 'epochAck', runId: assign.runId, epoch: e.epoch });
  if (!e.peers.includes(mesh.localId))
    throw new ElasticStateError(`epoch ${e.epoch} does not list this worker`);
  if (stateSource(msg) === mesh.localId)
    for (const joiner of msg.joiners ?? []) await giveState(e, msg, joiner);
  await relinkRing(e.ctx, e.peers, e.inbox.tell);
}

/**
 * Links the ring over an epoch's members (this worker among them), then tells the coordinator how
 * its links are carried (`tell`; a joiner's `ready` came before it knew its peers).
 */
export async function relinkRing(
  ctx: MethodContext,
  peers: readonly string[],
  tell?: ((msg: ToCoordinator) => void) | null,
): Promise<void> {
  const { mesh, assign, signal } = ctx;
  const rank = peers.indexOf(mesh.localId);
  if (rank < 0) throw new ElasticStateError(`the epoch's members do not list this worker`);
  if (peers.length < 2) return;
  const links = ringLinks({ ...assign, peers: [...peers], rank });
  await openLinks(mesh, links, RELINK_TIMEOUT_MS, signal, PHASE_TIMEOUTS.relink.phase);
  tell?.({ type: 'links', runId: assign.runId, links: linkCounts(mesh, [...links.dial, ...links.need]) });
}

/** What a joiner takes and a state source gives: parameters and the optimizer state that goes with them. */
export interface HandedState {
  ctx: MethodContext;
  params: Float32Array;
  optimizer: { state(): Float32Array[]; load(state: readonly Float32Array[]): void };
}

/** A joiner's first epoch: the state committed before msg.fromStep, from the epoch's first member. */
export async function takeState(e: HandedState, msg: EpochMsg): Promise<void> {
  const { mesh, assign, signal } = e.ctx;
  const from = stateSource(msg);
  const s = deadline(signal, JOIN_STATE_TIMEOUT_MS);
  await openLinks(mesh, { dial: [from], need: [from] }, JOIN_STATE_TIMEOUT_MS, signal);
  const key = { runId: assign.runId, step: msg.fromStep };
  const state = await timed(recvState(mesh, from, key, { signal: s }), s, signal);
  e.optimizer.load(unpackState(state, e.params, e.optimizer.state()));
}

/**
 * The member that streams the joiners their state: the first that is not joining itself (a
 * dropped member readmitted at rank 0 comes first in the epoch's list, with nothing to give yet).
 */
export function stateSource(msg: EpochMsg): string {
  const source = msg.peers.find((p) => !(msg.joiners ?? []).includes(p));
  if (source === undefined)
    throw new ElasticStateError(`epoch ${msg.epoch} has no member to take the state from`);
  return source;
}

/** The state source's side: the state before msg.fromStep (after any rollback) to `joiner`. */
export async function giveState(e: HandedState, msg: EpochMsg, joiner: string): Promise<void> {
  const { mesh, assign, signal } = e.ctx;
  const s = deadline(signal, JOIN_STATE_TIMEOUT_MS);
  await openLinks(mesh, { dial: [], need: [joiner] }, JOIN_STATE_TIMEOUT_MS, signal);
  const state = joinState(e.params, e.optimizer.state());
  const key = { runId: assign.runId, step: msg.fromStep };
  await timed(sendState(mesh, joiner, key, state, { signal: s }), s, signal);
}

/** `p`, with an abort of `s` that `outer` did not cause named as the join phase's timeout. */
async function timed<T>(p: Promise<T>, s: AbortSignal, outer: AbortSignal): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (s.aborted && !outer.aborted)
      throw new PhaseTimeoutError(PHASE_TIMEOUTS.joinState.phase, JOIN_STATE_TIMEOUT_MS);
    throw err;
  }
}

/**
 * This member's share of the global batch: the sum of its virtual ranks' mean gradients [P]. The
 * loss it reports is the sum of their mean losses times M / n0, so the coordinator's plain mean over
 * the M members' reports is the global batch's mean loss (with M = n0 and one rank: its own loss).
 * scaled-lr: its own rank's batch alone, and its own loss (the mean over members is the step's).
 */
async function gradientSum(
  e: Elastic,
  step: number,
): Promise<{ loss: number; grads: Float32Array; computeMs: number }> {
  const { ctx, params } = e;
  const { assign, mesh, session, spans } = ctx;
  const mine = e.scaledLr ? [assign.rank] : virtualRanks(e.n0, e.peers.length, e.peers.indexOf(mesh.localId));
  const share = e.scaledLr ? 1 : e.peers.length / e.n0;
  if (mine.length === 1 && mine[0] === assign.rank) {
    const own = await timedGradients(ctx, params, step); // prefetched
    return { ...own, loss: own.loss * share };
  }
  if (!session.gradientsOf)
    throw new ElasticStateError('this compute engine cannot compute another rank’s batch');
  const t0 = spans.now();
  let sum: Float32Array | null = null;
  let loss = 0;
  for (const v of mine) {
    const g = await session.gradientsOf(params, step, assign.allShards[v]!, { signal: ctx.signal });
    loss += g.loss * share;
    if (sum === null) sum = g.grads;
    else for (let i = 0; i < sum.length; i++) sum[i]! += g.grads[i]!;
  }
  const t1 = spans.now();
  spans.record('compute', t0, t1 - t0, { step });
  return { loss, grads: sum ?? new Float32Array(params.length), computeMs: t1 - t0 };
}

/**
 * The sum of `grads` over the epoch's members (allReduceSum: plain data parallel's algorithm), then / n0: the global batch's mean gradient
 * (scaled-lr: / M, the mean over the members' batches; the lr carries the M / n0).
 */
async function globalMean(e: Elastic, grads: Float32Array, step: number, signal: AbortSignal): Promise<void> {
  const { mesh, assign, spans } = e.ctx;
  if (e.peers.length > 1)
    await allReduceSum(mesh, e.peers, grads, {
      runId: assign.runId,
      step,
      // Each epoch's exchange of a step has its own keys: an aborted attempt's frames never match.
      microBatch: e.epoch,
      bucketElems: assign.config.bucketElems,
      algorithm: assign.config.allReduce,
      signal,
      now: () => spans.now(),
      onPhase: (kind, startMs, endMs) => spans.record(kind, startMs, endMs - startMs, { step }),
    });
  const inv = 1 / (e.scaledLr ? e.peers.length : e.n0);
  for (let i = 0; i < grads.length; i++) grads[i]! *= inv;
}

/**
 * An exchange of `what` failed with `err`. A lost member (its link closed; with `hopTimeouts`, also
 * a frozen one's hop timing out) or the epoch's own abort: wait for the coordinator's epoch and throw
 * StepRedoError (the run loop rewinds to its fromStep). Anything else is rethrown as it is.
 */
export async function redoAfterLoss(
  err: unknown,
  inbox: EpochInbox,
  signal: AbortSignal,
  what: string,
  epochNow: number,
  hopTimeouts: boolean,
): Promise<never> {
  signal.throwIfAborted();
  const lost = err instanceof PeerLostError || (hopTimeouts && err instanceof PhaseTimeoutError);
  if (!(err instanceof StepRedoError || lost)) throw err;
  await epochArrived(inbox, signal);
  throw new StepRedoError(`${what} aborted by epoch ${inbox.pending?.epoch ?? epochNow}`);
}

/** After a failed exchange: resolves once an epoch is pending (the coordinator sends one). */
export function epochArrived(inbox: EpochInbox, signal: AbortSignal): Promise<void> {
  if (inbox.pending) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(asError(signal.reason));
    inbox.arrived = () => {
      inbox.arrived = null;
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
