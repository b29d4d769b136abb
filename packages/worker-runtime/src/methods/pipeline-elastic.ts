// Elastic pipelines (config.elastic, strategy pipeline, gpipe, 1f1b or zb-h1, one replica; float32
// or fp16 activations, which round the same on any peer). A stage runs the plain stage's step, and
// besides:
// - every config.stageCheckpointEvery steps it sends the coordinator its state after the step
//   (joinState's layout: its parameters, then its optimizer's arrays) ahead of the step's stepDone,
//   under stageSnapshotKey; a step's snapshot goes once (a redone step does not send it again);
// - an `epoch` (a stage's peer was lost and a spare took its place) aborts the step in flight; at
//   the next step the stage takes the epoch: it restores the state after fromStep steps (from the
//   coordinator, under stageRestoreKey; fromStep 0: the seeded initial state), acknowledges, links
//   the new neighbours and redoes from fromStep. Every stage's step depends on its state and the
//   step only, so the run ends equal to the undisturbed one.
// An epoch whose fromStep is the run's end (a stage lost at the final gather, after the last
// snapshot) has no step to redo: the run loop has every worker take it (takeEpochAtEnd) and
// gathers again.
// A spare (assign.joining) holds no stage until its first epoch names one: peers[position] is it.
// Each epoch's activations and gradients carry their own tags, so an aborted attempt's tensors
// still in flight never feed a redone step. The epoch's peers[0] leads (evaluates; the gather).
import { deadline } from '@peertrain/base';
import { checkpointDue, joinState, runShape, stageRestoreKey, stageSnapshotKey } from '@peertrain/protocol';
import { createOptimizer } from '@peertrain/optim';
import type { Optimizer } from '@peertrain/optim';
import type { PayloadCompressor } from '@peertrain/compress';
import { schedule } from '@peertrain/schedules';
import type { AnyStageOps } from '@peertrain/schedules';
import type { StageSession } from '../compute.ts';
import { ElasticStateError, StepRedoError, inboxOf, redoAfterLoss } from '../elastic.ts';
import type { EpochInbox, EpochMsg } from '../elastic.ts';
import { unpackState } from '../join-state.ts';
import { linkCounts, openLinks } from '../links.ts';
import { f32View, runPipelineStep } from '../pipeline.ts';
import {
  activationCodec,
  gatherParams,
  neighbour,
  pipelineLinks,
  pipelineMethod,
  stageChunks,
  stageCoords,
  stepOutcome,
  zeroSkipping,
} from './pipeline.ts';
import type { StageCoords } from './pipeline.ts';
import type { MethodContext, MethodRun, WorkerMethod } from './types.ts';

/** How long linking the new neighbours may take. */
const RELINK_TIMEOUT_MS = 30_000;
/** How long the restored state may take to arrive from the coordinator. */
const RESTORE_TIMEOUT_MS = 60_000;
/** Tags each epoch's activations and gradients are apart (ACT_TAG and GRAD_TAG of one chunk fit). */
const EPOCH_TAG_STRIDE = 8;

/** The stage this worker holds: its layers, their parameters and gradients, its optimizer. */
interface Held {
  stage: StageSession;
  params: Float32Array;
  grads: Float32Array;
  optimizer: Optimizer;
  ops: AnyStageOps;
  /** What the stage sends (config activationCompress: none or fp16, which rounds the same anywhere). */
  codec: PayloadCompressor | null;
}

interface LiveStage {
  ctx: MethodContext;
  inbox: EpochInbox;
  /** The whole model (the leader gathers the stages into it to evaluate). */
  full: Float32Array;
  stages: number;
  /** The epoch's stages, in stage order. */
  peers: string[];
  epoch: number;
  /** This worker's stage (-1: a spare not called up yet). */
  position: number;
  /** Steps applied to the stage's parameters. */
  committed: number;
  /** The newest step whose snapshot this worker sent. */
  sentUpTo: number;
  held: Held | null;
}

/** The elastic pipeline's MethodRun (methods/pipeline.ts hands elastic runs here). */
export function elasticStage(ctx: MethodContext): MethodRun {
  const { assign, mesh } = ctx;
  const stages = runShape(assign.config).stages;
  const s: LiveStage = {
    ctx,
    inbox: inboxOf(assign),
    full: ctx.session.initParams(),
    stages,
    peers: assign.peers.slice(0, stages),
    epoch: 0,
    position: assign.joining === true ? -1 : assign.rank,
    committed: 0,
    sentUpTo: 0,
    held: null,
  };
  if (s.position >= 0) s.held = hold(s);
  return {
    paramBytes: s.held?.params.byteLength ?? 0,
    get evalParams() {
      return s.peers[0] === mesh.localId ? s.full : null;
    },
    async step(step) {
      if (s.inbox.pending) await takeEpoch(s, s.inbox.pending);
      const h = s.held;
      if (!h) throw new ElasticStateError('a spare was asked for a step before an epoch gave it a stage');
      if (step !== s.committed)
        throw new ElasticStateError(`asked for step ${step}, committed ${s.committed}`);
      const outcome = await redoable(s, step, () => stageStep(s, h, step));
      s.committed = step + 1;
      await sendSnapshot(s, h, s.committed);
      return stepOutcome(ctx.spans, step, outcome);
    },
    async beforeEval(after) {
      const h = s.held;
      if (!h) return;
      // An epoch that came since the step ended has other stages: the loop rewinds to it first.
      if (s.inbox.pending)
        throw new StepRedoError(`the gather after step ${after} comes after epoch ${s.inbox.pending.epoch}`);
      const placed = { ...assign, peers: s.peers, rank: s.position };
      const ctxNow = { ...ctx, assign: placed, signal: AbortSignal.any([ctx.signal, s.inbox.abort.signal]) };
      await redoable(s, after, () => gatherParams(ctxNow, coordsOf(s), [h], s.full, after));
    },
    async takeEpochAtEnd(end) {
      const pending = s.inbox.pending;
      if (pending?.fromStep === end) await takeEpoch(s, pending);
    },
    dispose: () => {
      s.inbox.arrived = null;
    },
  };
}

/** Where this worker now sits among the epoch's stages. */
function coordsOf(s: LiveStage): StageCoords {
  return stageCoords({ config: s.ctx.assign.config, peers: s.peers, rank: s.position });
}

/** Takes the stage at s.position: its layers with the seeded initial parameters, a fresh optimizer. */
function hold(s: LiveStage): Held {
  const { config } = s.ctx.assign;
  const { stage, params, grads } = stageChunks(s.ctx, coordsOf(s), s.full);
  const optimizer = createOptimizer(config.optimizer, config.lr, params.length);
  const ops = schedule(config.schedule, s.stages, config.microBatches)[s.position]!;
  const codec = activationCodec(config.activationCompress, config.seed + s.position);
  return { stage, params, grads, optimizer, ops, codec };
}

/** One pipeline step over the epoch's neighbours; a new epoch aborts it. */
function stageStep(s: LiveStage, h: Held, step: number) {
  const { ctx } = s;
  const coords = coordsOf(s);
  return runPipelineStep({
    mesh: ctx.mesh,
    runId: ctx.assign.runId,
    step,
    ops: h.ops,
    stage: h.stage,
    prev: neighbour(coords, -1, false),
    next: neighbour(coords, 1, false),
    params: h.params,
    grads: h.grads,
    spans: ctx.spans,
    signal: AbortSignal.any([ctx.signal, s.inbox.abort.signal]),
    onHeld: ctx.onHeld,
    codec: h.codec,
    tagOffset: EPOCH_TAG_STRIDE * s.epoch,
    ...zeroSkipping(ctx.assign.config, [h]),
    optimizer: () => {
      const t0 = ctx.spans.now();
      h.optimizer.step(h.params, h.grads);
      ctx.spans.record('optimizer', t0, ctx.spans.now() - t0, { step });
      return Promise.resolve();
    },
  });
}

/**
 * `work`, where a lost peer (its link closed, or the epoch's abort) means: wait for the coordinator's
 * epoch and redo (StepRedoError: the run loop rewinds to the epoch's fromStep).
 */
async function redoable<T>(s: LiveStage, step: number, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    return redoAfterLoss(err, s.inbox, s.ctx.signal, `step ${step}`, s.epoch, false);
  }
}

/** The stage's state after `done` steps to the coordinator, when due and not sent before. */
async function sendSnapshot(s: LiveStage, h: Held, done: number): Promise<void> {
  const { ctx } = s;
  if (!checkpointDue(ctx.assign.config.stageCheckpointEvery, done) || done <= s.sentUpTo) return;
  if (!ctx.coordinatorId) throw new ElasticStateError('no coordinator to send stage snapshots to');
  const state = joinState(h.params, h.optimizer.state());
  const data = new Uint8Array(state.buffer, state.byteOffset, state.byteLength);
  const key = stageSnapshotKey(ctx.assign.runId, done, s.position);
  await ctx.mesh.sendTensor(
    ctx.coordinatorId,
    { ...key, dtype: 'float32', shape: [state.length], data },
    {
      signal: ctx.signal,
    },
  );
  s.sentUpTo = done;
}

/** Takes epoch `msg`: the stage it names, the state after msg.fromStep steps, the new links. */
async function takeEpoch(s: LiveStage, msg: EpochMsg): Promise<void> {
  const { ctx } = s;
  s.inbox.pending = null;
  const position = msg.peers.indexOf(ctx.mesh.localId);
  if (position < 0) throw new ElasticStateError(`epoch ${msg.epoch} does not list this worker`);
  if (s.held && position !== s.position)
    throw new ElasticStateError(`epoch ${msg.epoch} moves stage ${s.position} to ${position}`);
  s.peers = [...msg.peers];
  s.epoch = msg.epoch;
  s.position = position;
  const h = (s.held ??= hold(s));
  await restore(s, h, msg.fromStep);
  s.committed = msg.fromStep;
  s.inbox.joining = false;
  // Every stepDone sent after this belongs to the new epoch (the control link is ordered).
  s.inbox.tell?.({ type: 'epochAck', runId: ctx.assign.runId, epoch: s.epoch });
  const links = pipelineLinks({ config: ctx.assign.config, peers: s.peers, rank: position });
  await openLinks(ctx.mesh, links, RELINK_TIMEOUT_MS, ctx.signal);
  // A spare that takes a stage over said no links when ready: the coordinator learns them now.
  const counts = linkCounts(ctx.mesh, [...links.dial, ...links.need]);
  s.inbox.tell?.({ type: 'links', runId: ctx.assign.runId, links: counts });
}

/** The stage's parameters and optimizer state after `fromStep` steps. */
async function restore(s: LiveStage, h: Held, fromStep: number): Promise<void> {
  const { ctx } = s;
  const { config, runId } = ctx.assign;
  if (fromStep === 0) {
    const init = ctx.session.initParams();
    h.params.set(init.subarray(h.stage.paramOffset, h.stage.paramOffset + h.stage.paramCount));
    h.optimizer = createOptimizer(config.optimizer, config.lr, h.params.length);
    return;
  }
  if (!ctx.coordinatorId) throw new ElasticStateError('no coordinator to restore the stage from');
  const signal = deadline(ctx.signal, RESTORE_TIMEOUT_MS);
  const got = await ctx.mesh.recvTensor(ctx.coordinatorId, stageRestoreKey(runId, s.epoch, fromStep), {
    signal,
  });
  h.optimizer.load(unpackState(f32View(got.data), h.params, h.optimizer.state()));
}

/** The pipeline method as the registry lists it: elastic runs here, the others as methods/pipeline.ts sets them up. */
export const pipelineMethodOrElastic: WorkerMethod = {
  ...pipelineMethod,
  setup: (ctx) => (ctx.assign.config.elastic ? elasticStage(ctx) : pipelineMethod.setup(ctx)),
};
