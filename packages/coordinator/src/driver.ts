import { AbortError, asError, deadline } from '@peertrain/base';
import {
  ConfigError,
  PeerLostError,
  finalParamsKey,
  parseRunConfig,
  runShape,
  toWireError,
} from '@peertrain/protocol';
import { checkResumable, checkpointDue } from '@peertrain/protocol';
import type { Checkpoint, RunConfig, RunConfigInput, ToCoordinator, WireError } from '@peertrain/protocol';
import { CHECKPOINT_HOLDER_RANK, collectCheckpoint, sendResumeState, toBase64 } from './checkpoints.ts';
import { ElasticEpochs } from './epochs.ts';
import { StageSpares } from './stage-spares.ts';
import { injectMalformedFrame, injectSlowWorker, joinFaultStep } from './faults.ts';
import type { Hub } from './hub.ts';
import { BubbleMeter, UtilizationSums, activityOf, stepPoint } from './intake.ts';
import type { SpanIntake, StepDoneMsg, StepRecord } from './intake.ts';
import type { Membership, PeerRecord } from './membership.ts';
import { methodFor, methodName } from './methods/registry.ts';
import { barrierWindowOf } from './methods/method.ts';
import type { MethodRun } from './methods/method.ts';
import type { Planning, ProfileSession } from './planning.ts';
import { buildReport, workersByRank } from './report.ts';
import { inRankOrder } from './rank-order.ts';
import { emptyRun } from './types.ts';
import type { RunReport, RunView, TrainedModel } from './types.ts';
import { untilReleased, waitFor, wake } from './wait.ts';

/*
 * The run driver: one run from waiting for workers to the report. Assignment (what the method
 * says), the windowed step barrier, step bookkeeping, evaluation and reference requests, and the
 * trained parameters collected from rank 0.
 */

/** How long the trained parameters may lag the final evaluation (they are sent ahead of it). */
const FINAL_PARAMS_GRACE_MS = 1000;

type EvalResult = Extract<ToCoordinator, { type: 'evalResult' }>;
type RunMsg = Extract<
  ToCoordinator,
  {
    type: 'ready' | 'profileResult' | 'stepDone' | 'evalResult' | 'referenceResult' | 'epochAck' | 'links';
  }
>;
export type RunOptions = {
  signal?: AbortSignal;
  waitMs?: number;
  faults?: readonly string[];
  /** Start from this checkpoint's state at its step (checkResumable: the same run configuration). */
  resume?: Checkpoint;
  ranks?: readonly string[]; // peer ids by rank to keep (a resumed run's members: rank-order.ts)
};

/** A run in flight: everything that must be torn down when it ends. */
interface ActiveRun extends ProfileSession {
  config: RunConfig;
  /** Peer ids by rank (empty until the workers are chosen). */
  ranks: string[];
  method: MethodRun | null;
  /** Elastic runs: who is still in and which reports count (null: a lost member fails the run). */
  epochs: ElasticEpochs | null;
  /** Elastic pipelines: stage snapshots, spares and recoveries (stage-spares.ts). */
  spares: StageSpares | null;
  /** The step the barrier waits for. */
  waiting: number;
  /** stepDone messages per step, by rank (in arrival order). */
  stepDone: Map<number, Map<number, StepDoneMsg>>;
  records: StepRecord[];
  evals: Map<number, EvalResult>;
  /** Who sent each evaluation (the leader at the time: its parameters come on the same link). */
  evalFrom: Map<number, string>;
  /** Every evaluation in arrival order (the report's list). */
  evalLog: EvalResult[];
  reference: Extract<ToCoordinator, { type: 'referenceResult' }> | null;
  ready: Set<string>;
  errors: WireError[];
  paused: boolean;
  resume: (() => void) | null;
  /** Coordinator clock at the run's start and at the first step's grant. */
  t0: number;
  trainStart: number;
  /** Steps the run takes: config.steps, or the step whose evaluation rank 0 marked final (target reached). */
  endStep: number;
  /** The first evaluation at or above config.targetAccuracy: its step, ms after the first step's grant. */
  target: { step: number; atMs: number } | null;
  /** Compute utilization so far, per rank (the progress events' figure). */
  utilization: UtilizationSums;
  /** A resumed run's checkpoint (its first step is the checkpoint's step), else null. */
  resumed: Checkpoint | null;
}

export interface DriverInit {
  hub: Hub;
  room: string;
  membership: Membership;
  planning: Planning;
  spans: SpanIntake;
  readyTimeoutMs: number;
  stepTimeoutMs: number;
  bubbleHistory: number;
  disposed(): boolean;
}

export class RunDriver {
  private active: ActiveRun | null = null;
  private runCounter = 0;
  runView: RunView = emptyRun(0);
  trained: TrainedModel | null = null;

  constructor(private readonly init: DriverInit) {
    // A member lost mid-run fails the run, or ends the epoch of an elastic one.
    init.membership.onChange((c) => {
      if (c.type === 'lost') this.lost(c.peerId, c.detail);
    });
  }

  activeRunId(): number | null {
    return this.active?.runId ?? null;
  }

  /** Peer ids of the run in progress, by rank (empty when none). */
  ranks(): readonly string[] {
    return this.active?.ranks ?? [];
  }

  /**
   * A member of the run is gone. An elastic run that is training goes on with a new epoch of the
   * survivors (any rank: what rank 0 did, the lowest surviving rank does, see leaderOf); after
   * the last step a loss no longer matters; otherwise the run fails.
   */
  private lost(peerId: string, detail: string): void {
    const r = this.active;
    if (!r?.ranks.includes(peerId)) return;
    const { phase } = this.runView;
    const elastic = r.epochs !== null;
    if (elastic && phase === 'finishing') return;
    if (!elastic || !(phase === 'running' || phase === 'paused')) {
      this.fail(new PeerLostError(peerId, detail));
      return;
    }
    if (r.spares) {
      const err = r.spares.lose(peerId, detail);
      return err ? this.fail(err) : wake(r, peerId, { type: 'leave', reason: detail });
    }
    const { hub, membership } = this.init;
    const drop = r.method?.elasticDrop;
    if (drop && !drop.expendable(r.ranks.indexOf(peerId)))
      return this.fail(new PeerLostError(peerId, `${detail}; it served parameters, the run cannot go on`));
    const next = membership.view().epoch + 1;
    const msg = drop
      ? r.epochs!.drop(peerId, detail, r.waiting, next)
      : r.epochs!.lose(peerId, detail, r.waiting, r.stepDone, next);
    if (!msg) return; // already out
    membership.beginEpoch(msg.peers.map((id) => ({ peerId: id, rank: r.ranks.indexOf(id), role: 'worker' })));
    const redo = drop ? 'the others go on without it' : `redoes from step ${msg.fromStep}`;
    hub.log(`${peerId} lost (${detail}): epoch ${msg.epoch} of ${msg.peers.length} ${redo}`);
    hub.send(peerId, { type: 'stop', runId: r.runId, reason: 'left the epoch' });
    for (const id of msg.peers) hub.send(id, msg);
    wake(r, peerId, { type: 'leave', reason: detail }); // the barrier now waits for fewer members
    hub.changed();
  }

  fail(err: Error): void {
    this.active?.abort.abort(err);
  }

  pause(): void {
    if (this.active) this.active.paused = true;
  }

  resume(): void {
    if (!this.active) return;
    this.active.paused = false;
    const r = this.active.resume;
    this.active.resume = null;
    r?.();
  }

  /** A malformed frame a worker refused: kept for the report. */
  onFrameRefused(error: WireError): void {
    this.active?.errors.push(error);
  }

  /** A worker's error: fails the run it names (or the current one), naming a lost peer if it saw one. */
  onWorkerError(from: string, msg: Extract<ToCoordinator, { type: 'error' }>): void {
    const run = this.active;
    run?.errors.push(msg.error);
    if (!run || (msg.runId !== undefined && msg.runId !== run.runId)) return;
    // A worker that lost a peer of the run may say so before this side's own link to that peer
    // closes: either way the run fails naming the lost peer (its report is in errors).
    const lost = msg.error.name === 'PeerLostError' ? msg.error.peerId : undefined;
    if (lost !== undefined && run.ranks.includes(lost)) {
      if (run.epochs) return this.lost(lost, `seen by ${from}`);
      this.fail(new PeerLostError(lost, `seen by ${from}`));
      return;
    }
    const err = new Error(`${from}: ${msg.error.message}`);
    err.name = msg.error.name;
    this.fail(err);
  }

  /** ready, profileResult, stepDone, evalResult, referenceResult, epochAck, links of the run in progress. */
  onRunMessage(from: string, p: PeerRecord, msg: RunMsg): void {
    const run = this.active;
    if (!run || msg.runId !== run.runId) return;
    const rank = run.ranks.indexOf(from);
    if (rank < 0) return;
    if (msg.type === 'ready') run.ready.add(from);
    if ((msg.type === 'ready' || msg.type === 'links') && msg.links) p.links = msg.links;
    if (msg.type === 'profileResult') run.profiles.set(from, msg.layers);
    if (msg.type === 'epochAck') run.epochs?.ack(from, msg.epoch);
    if (msg.type === 'stepDone' && run.epochs && !run.epochs.counts(from)) return; // an aborted epoch's
    if (msg.type === 'stepDone') this.onStepDone(run, rank, p, msg);
    if (msg.type === 'evalResult') run.evalFrom.set(msg.step, from);
    if (msg.type === 'evalResult') this.onEval(run, msg);
    if (msg.type === 'referenceResult') run.reference = msg;
    wake(run, from, msg);
  }

  private onStepDone(run: ActiveRun, rank: number, p: PeerRecord, msg: StepDoneMsg): void {
    if (msg.step >= run.endStep) return; // past the target: the run ended before this step
    if (msg.spans && msg.spans.length > 0) this.init.spans.add(p.peerId, p.clockOffsetMs ?? 0, msg.spans);
    run.method?.onStepDone?.(rank, msg);
    let m = run.stepDone.get(msg.step);
    if (!m) run.stepDone.set(msg.step, (m = new Map<number, StepDoneMsg>()));
    m.set(rank, msg);
    p.lastStep = msg.step;
    p.lastComputeMs = msg.computeMs;
    p.lastCommMs = msg.commMs;
    p.bytesSent = msg.bytesSent;
    p.lastReportAt = this.init.hub.now();
    if (p.state !== 'gone') p.state = activityOf(msg);
  }

  /** Evaluations arrive between steps (rank 0 evaluates): folded into the live view. */
  private onEval(run: ActiveRun, msg: EvalResult): void {
    const { hub } = this.init;
    run.evals.set(msg.step, msg);
    run.evalLog.push(msg);
    const target = run.config.targetAccuracy;
    if (target !== undefined && run.target === null && msg.accuracy >= target) {
      run.target = { step: msg.step, atMs: hub.now() - run.trainStart };
      hub.log(`target accuracy ${target} reached at step ${msg.step} (${msg.accuracy.toFixed(4)})`);
    }
    // Rank 0 stops after the step that reached the target; the driver's loop ends there.
    if (msg.final === true && msg.step < run.endStep) run.endStep = msg.step;
    const tMs = this.runView.startedAt === null ? 0 : hub.now() - this.runView.startedAt;
    this.runView = {
      ...this.runView,
      evals: [...this.runView.evals, { step: msg.step, accuracy: msg.accuracy, loss: msg.loss, tMs }],
    };
    hub.emit({ type: 'eval', step: msg.step, accuracy: msg.accuracy });
    hub.changed();
  }

  async run(input: RunConfigInput, opts: RunOptions = {}): Promise<RunReport> {
    if (this.init.disposed()) throw new AbortError('coordinator disposed');
    if (this.active) throw new ConfigError('a run is already in progress');
    const config = parseRunConfig(input);
    if (opts.resume) checkResumable(opts.resume, config); // CheckpointError before any peer is taken
    const method = methodFor(config);
    // A run profiles the devices itself: a preview still in flight would only share their CPU.
    this.init.planning.abortPreview(new AbortError('a run started'));
    const r = this.begin(config, opts.resume ?? null);
    const onOuterAbort = (): void => r.abort.abort(opts.signal?.reason ?? new AbortError('run cancelled'));
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      const chosen = await this.choose(r, opts.waitMs ?? 120_000, opts.ranks);
      const { init } = this;
      r.method = await method.prepare({
        runId: r.runId,
        config,
        peers: chosen,
        planPipeline: (devices) => init.planning.planPipeline(r, config, devices),
      });
      this.assign(r, chosen, r.method);
      await this.train(r, r.method, opts);
      return await this.finish(r, r.method, chosen);
    } catch (e) {
      throw this.failed(r, asError(e));
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      this.end(r);
    }
  }

  private begin(config: RunConfig, resumed: Checkpoint | null): ActiveRun {
    const { hub, spans } = this.init;
    const runId = ++this.runCounter;
    this.runView = { ...emptyRun(runId), phase: 'preparing', config, totalSteps: config.steps };
    this.trained = null;
    spans.reset();
    hub.changed();
    const t0 = hub.now();
    this.active = {
      runId,
      config,
      ranks: [],
      method: null,
      epochs: null,
      spares: null,
      waiting: 0,
      abort: new AbortController(),
      stepDone: new Map(),
      records: [],
      evals: new Map(),
      evalFrom: new Map(),
      evalLog: [],
      reference: null,
      ready: new Set(),
      profiles: new Map(),
      errors: [],
      waiters: new Set(),
      paused: false,
      resume: null,
      t0,
      trainStart: t0,
      endStep: config.steps,
      target: null,
      utilization: new UtilizationSums(config.workers),
      resumed,
    };
    return this.active;
  }

  /** The oldest idle peers become the run's ranks; their bandwidth probes stop. */
  private async choose(r: ActiveRun, waitMs: number, prefer?: readonly string[]): Promise<PeerRecord[]> {
    this.init.hub.log(`waiting for ${r.config.workers} workers in room ${this.init.room}`);
    const idle = await this.init.membership.waitForIdle(r.config.workers, waitMs, r.abort.signal);
    const chosen = inRankOrder(idle, prefer);
    r.ranks = chosen.map((p) => p.peerId);
    for (const p of chosen) p.probe?.abort(new AbortError('a run took the peer'));
    return chosen;
  }

  /** Tells every rank what the method says it does, and starts the run's epoch. */
  private assign(r: ActiveRun, chosen: readonly PeerRecord[], mr: MethodRun): void {
    const { hub, spans, membership } = this.init;
    const names: Record<string, string> = {};
    chosen.forEach((p, rank) => {
      const a = mr.assignments[rank]!;
      p.rank = rank;
      delete p.joinedAtStep; // a joiner of the last run starts this one with it
      p.bytesSent = 0;
      p.framesRefused = 0;
      p.state = 'computing';
      p.role = a.role;
      p.stage = a.stage;
      p.shard = a.shard;
      names[p.peerId] = a.traceName;
      const resume = r.resumed ? { resume: { step: r.resumed.step } } : {};
      hub.send(p.peerId, { ...a.message, ...resume });
    });
    spans.setNames(names);
    const view = membership.beginEpoch(chosen.map((p, rank) => ({ peerId: p.peerId, rank, role: p.role })));
    const stages = r.ranks.length - r.config.spares; // the rest are spares (elastic pipelines)
    if (r.config.elastic)
      r.epochs = new ElasticEpochs(r.runId, r.ranks, view.epoch, stages, mr.epochBoundary);
    if (r.config.elastic && r.config.strategy === 'pipeline')
      r.spares = new StageSpares(this.init, r, barrierWindowOf(mr), (snapshotStep) => {
        const pipeline = this.runView.pipeline && { ...this.runView.pipeline, snapshotStep };
        if (pipeline && this.runView.runId === r.runId) this.runView = { ...this.runView, pipeline };
        hub.changed();
      });
    if (mr.pipelineView) this.runView = { ...this.runView, pipeline: mr.pipelineView };
    hub.changed();
  }

  /** Waits for every rank to be ready, then runs the steps behind the windowed barrier. */
  private async train(r: ActiveRun, mr: MethodRun, opts: RunOptions): Promise<void> {
    const { hub, readyTimeoutMs, stepTimeoutMs, bubbleHistory } = this.init;
    const { config } = r;
    const isReady = (): boolean => r.ready.size === r.ranks.length;
    if (r.resumed) await sendResumeState(hub.mesh, r.ranks, r.runId, r.resumed, r.abort.signal);
    await waitFor(r, 'workers loading data and connecting', readyTimeoutMs, isReady);
    hub.log(`all ${config.workers} workers ready; training ${config.steps} steps (${methodName(config)})`);
    const first = r.resumed?.step ?? 0;
    this.runView = { ...this.runView, phase: 'running', startedAt: hub.now(), step: first };
    hub.changed();
    r.trainStart = hub.now();
    const meter = mr.bubble ? new BubbleMeter(mr.bubble.peers, mr.bubble.stages, bubbleHistory) : null;
    let granted = first - 1;
    if (first > 0) hub.log(`resuming from the checkpoint after step ${first}`);
    const window = barrierWindowOf(mr);
    const malformedAt = opts.faults?.includes('malformed') ? Math.min(3, config.steps - 1) : -1;
    if (opts.faults?.includes('slow')) injectSlowWorker(hub, r.runId, r.ranks[r.ranks.length - 1]!);
    const joinAt = joinFaultStep(opts.faults);
    // r.endStep drops below config.steps when rank 0's evaluation reaches the target.
    for (let step = first; step < r.endStep; step++) {
      if (r.paused) await this.pausedUntilResumed(r);
      if (r.epochs && step === joinAt) await this.awaitJoiner(r, step);
      if (r.epochs?.joinsAt(step) && !mr.elasticDrop) this.admitJoiners(r, r.epochs, step, granted);
      const all = (): boolean =>
        r.epochs?.stepDone(step, r.stepDone) ?? (r.stepDone.get(step)?.size ?? 0) === r.ranks.length;
      const upTo = Math.min(step + window - 1, config.steps - 1);
      // A grant goes out only where the barrier waits: steps reported together (a DiLoCo round's
      // held reports) need none, so a round costs a worker one grant message, not one per step.
      if (upTo > granted && !all()) {
        granted = upTo;
        for (const id of r.epochs?.members() ?? r.ranks) hub.send(id, { type: 'step', runId: r.runId, upTo });
      }
      if (step === malformedAt) await injectMalformedFrame(hub, r.runId, r.ranks[0]!);
      r.waiting = step;
      await waitFor(r, `step ${step}`, stepTimeoutMs, () => all() || step >= r.endStep);
      if (step >= r.endStep) break;
      this.recordStep(r, step, meter);
      r.spares?.afterStep(step);
      hub.changed();
      if (checkpointDue(config.checkpointEvery, step + 1)) await this.checkpoint(r, step + 1);
    }
    await this.collectFinal(r, r.endStep);
    hub.changed();
  }

  /**
   * Elastic runs: idle peers that arrived since the run began join at this step boundary (steps
   * before `step` are all recorded). Each takes the next rank (a dropped member its own), is assigned
   * as a joiner (its rank's assignment, else rank 0's), and every member gets the new epoch, which
   * redoes from `step`; a member streams the joiner the state. It is granted what the members were.
   */
  private admitJoiners(r: ActiveRun, epochs: ElasticEpochs, step: number, granted: number): void {
    const { hub, membership } = this.init;
    for (const p of membership.idle()) {
      const back = r.ranks.indexOf(p.peerId);
      const rank = back >= 0 ? back : r.ranks.length;
      const template = r.method?.assignments[rank] ?? r.method?.assignments[0];
      if (!template || epochs.isMember(p.peerId)) continue;
      p.probe?.abort(new AbortError('a run took the peer'));
      if (back < 0) r.ranks.push(p.peerId);
      p.rank = rank;
      p.role = template.role;
      p.shard = template.shard;
      p.joinedAtStep = step;
      p.state = 'computing';
      p.lastReportAt = hub.now(); // its stall clock starts now, not at the run's start
      hub.send(p.peerId, { ...template.message, rank, peers: [...r.ranks], joining: true });
      const msg = epochs.join(p.peerId, rank, step, r.stepDone, membership.view().epoch + 1);
      membership.beginEpoch(
        msg.peers.map((id) => ({ peerId: id, rank: r.ranks.indexOf(id), role: 'worker' })),
      );
      hub.log(`${p.peerId} joins at step ${step} as rank ${rank}: epoch ${msg.epoch} of ${msg.peers.length}`);
      for (const id of msg.peers) hub.send(id, msg);
      if (granted >= 0) hub.send(p.peerId, { type: 'step', runId: r.runId, upTo: granted });
      hub.changed();
    }
  }

  /** Fault injection ('join@K'): holds the barrier at step K until one more peer is in the room. */
  private async awaitJoiner(r: ActiveRun, step: number): Promise<void> {
    const { hub, membership, readyTimeoutMs } = this.init;
    hub.log(`fault injection: waiting at step ${step} for a peer to join`);
    await membership.waitForIdle(1, readyTimeoutMs, r.abort.signal);
  }

  /** The holder's state after `steps` steps, emitted as a checkpoint event. */
  private async checkpoint(r: ActiveRun, steps: number): Promise<void> {
    const { hub, room, stepTimeoutMs } = this.init;
    const holder = r.ranks[CHECKPOINT_HOLDER_RANK]!;
    const run = { runId: r.runId, config: r.config, room };
    const event = await collectCheckpoint(hub.mesh, holder, run, steps, {
      signal: r.abort.signal,
      timeoutMs: stepTimeoutMs,
      toBase64,
    });
    hub.log(`checkpoint after step ${steps} (${event.manifest.blob.bytes} bytes)`);
    hub.emit(event);
  }

  private async pausedUntilResumed(r: ActiveRun): Promise<void> {
    this.runView = { ...this.runView, phase: 'paused' };
    this.init.hub.changed();
    await untilReleased(r.abort.signal, (release) => (r.resume = release));
    this.runView = { ...this.runView, phase: 'running' };
    this.init.hub.changed();
  }

  /** The step passed the barrier: its metrics, the live spans, the bubble, a progress event. */
  private recordStep(r: ActiveRun, step: number, meter: BubbleMeter | null): void {
    const { hub, spans } = this.init;
    const reports = [...r.stepDone.get(step)!].map(([rank, msg]) => ({ rank, msg }));
    const rec: StepRecord = { step, doneAtMs: hub.now() - r.trainStart, reports };
    const point = stepPoint(rec, r.records[r.records.length - 1], runShape(r.config).globalBatch);
    r.records.push(rec);
    r.utilization.add(rec);
    this.runView.steps.push(point); // shared, append-only (RunView.steps)
    this.runView = { ...this.runView, step: step + 1, spans: spans.live };
    const pv = this.runView.pipeline;
    if (pv && meter) this.runView = { ...this.runView, pipeline: meter.record(step, spans.live, pv) };
    hub.emit({
      type: 'progress',
      step: step + 1,
      totalSteps: r.config.steps,
      loss: point.loss,
      samplesPerSec: point.samplesPerSec,
      computeUtilization: r.utilization.mean(),
    });
  }

  /**
   * After the last step (`done` steps: all of them, or those up to the target): the leader's
   * evaluation and trained parameters. The leader (rank 0, or in an elastic run that lost it the
   * lowest surviving rank, which takes over the final evaluation) evaluates on its own schedule
   * (every evalEvery steps and after the last one): every worker holds identical parameters after
   * a synchronous step. The parameters travel ahead of the result on the same ordered link: when
   * the result is here they are too (the mesh keeps a tensor that arrives before it is asked for; a
   * short grace covers a worker that never sends them).
   */
  private async collectFinal(r: ActiveRun, done: number): Promise<void> {
    const { hub, stepTimeoutMs } = this.init;
    await waitFor(r, 'evaluation', stepTimeoutMs, () => r.evals.has(done));
    const from = r.evalFrom.get(done) ?? leaderOf(r);
    const msg = await hub.mesh
      .recvTensor(from, finalParamsKey(r.runId, done), {
        signal: deadline(r.abort.signal, FINAL_PARAMS_GRACE_MS),
      })
      .catch(() => null);
    if (!msg) {
      hub.log('rank 0 sent no trained parameters: the model cannot be exported');
      return;
    }
    const bytes = msg.data.slice(); // own, aligned copy
    this.trained = {
      runId: r.runId,
      model: r.config.model,
      params: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4),
      testAccuracy: r.evals.get(done)!.accuracy,
    };
  }

  /** The reference run if asked, stop, and the report with its events. */
  private async finish(r: ActiveRun, mr: MethodRun, chosen: readonly PeerRecord[]): Promise<RunReport> {
    const { hub, stepTimeoutMs } = this.init;
    const { config } = r;
    const trainMs = hub.now() - r.trainStart;
    r.spares?.runEnded();
    this.runView = { ...this.runView, phase: 'finishing' };
    hub.changed();
    const early = r.endStep < config.steps;
    // The reference trains all config.steps steps: it has nothing to compare with after an early end.
    if (config.reference && early) hub.log('target reached before the last step: no reference run');
    if (config.reference && !early) {
      hub.log('training the single-worker reference on the same global batches');
      hub.send(leaderOf(r), { type: 'reference', runId: r.runId });
      const refMs = Math.max(stepTimeoutMs, config.steps * 5_000);
      await waitFor(r, 'reference run', refMs, () => r.reference !== null);
    }
    const reason = early ? `target accuracy reached at step ${r.endStep}` : 'finished';
    for (const id of r.ranks) hub.send(id, { type: 'stop', runId: r.runId, reason });
    const report = buildReport({
      config,
      globalBatch: runShape(config).globalBatch,
      steps: r.records,
      evals: r.evalLog,
      reference: r.reference,
      workers: workersByRank(r.epochs?.everyRank() ?? r.ranks, this.init.membership.peers, chosen),
      wallMs: hub.now() - r.t0,
      trainMs,
      methodFields: mr.reportFields(this.runView.pipeline),
      errors: r.errors,
      target: r.target,
    });
    if (r.epochs) report.membershipChanges = r.epochs.changes;
    if (r.spares) report.redoneSteps = r.spares.redone;
    this.runView = { ...this.runView, phase: 'done' };
    hub.emit({ type: 'trace', trace: this.init.spans.trace() });
    const trained = this.trained;
    if (trained && trained.runId === r.runId) {
      hub.emit({ type: 'model', model: trained.model, paramsBase64: toBase64(trained.params) });
    }
    hub.emit({ type: 'done', report });
    return report;
  }

  /** The run failed or was stopped: the view says so, the ranks stop, the events go out. */
  private failed(r: ActiveRun, err: Error): Error {
    const { hub } = this.init;
    const stopped = err.name === 'AbortError';
    this.runView = { ...this.runView, phase: stopped ? 'stopped' : 'failed', error: toWireError(err) };
    for (const id of r.ranks)
      hub.send(id, { type: 'stop', runId: r.runId, reason: `${err.name}: ${err.message}` });
    hub.emit({ type: 'trace', trace: this.init.spans.trace() });
    hub.emit({ type: 'error', error: toWireError(err) });
    return err;
  }

  /** Back to idle; the links are measured again (the run may have changed what they carry). */
  private end(r: ActiveRun): void {
    const back = this.init.membership.endEpoch(r.ranks);
    this.active = null;
    this.init.hub.changed();
    for (const p of back)
      if (p.state === 'idle' && !this.init.disposed()) void this.init.planning.probeBandwidth(p);
  }
}

/** The member that evaluates and hands over the parameters: rank 0, or the lowest surviving rank. */
function leaderOf(r: ActiveRun): string {
  return r.epochs?.members()[0] ?? r.ranks[0]!;
}
