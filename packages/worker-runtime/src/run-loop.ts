import { AbortError, asError, sleep } from '@peertrain/base';
// The driver of one assigned run, the same for every training method: prepare the session and open
// the method's links, set the method up, then step as the coordinator grants, evaluate when asked or
// due, train the reference when asked. What a step does is the method's (methods/).
import { ProtocolError, checkpointDue, finalParamsKey, runShape, toWireError } from '@peertrain/protocol';
import type { WireSpan } from '@peertrain/protocol';
import { SpanRecorder } from '@peertrain/telemetry';
import type { Span } from '@peertrain/telemetry';
import type { TrainSession } from './compute.ts';
import { memoryReport, newRunState, waitForWork } from './core.ts';
import type { RunState, WorkerCore } from './core.ts';
import { receiveResume, sendCheckpointIfDue } from './checkpoint.ts';
import { StepRedoError, leads, rewind } from './elastic.ts';
import { DroppedError } from './heartbeat.ts';
import { linkCounts, openLinks } from './links.ts';
import { shardedEvaluate } from './sharded-eval.ts';
import { StepReports } from './reports.ts';
import { methodName, workerMethod } from './methods/index.ts';
import type { Assign, MethodRun } from './methods/index.ts';

/** Spans one step may record before the oldest are dropped: the wire's limit per `stepDone`. */
const MAX_SPANS_PER_STEP = 10_000;

/** What the loop's parts share for one run. */
interface Driver {
  core: WorkerCore;
  run: RunState;
  method: MethodRun;
  session: TrainSession;
  spans: SpanRecorder;
  signal: AbortSignal;
  /** stepDone messages; a local step's may be held until its round ends (reports.ts). */
  reports: StepReports;
  /** Queued evaluations that every rank takes its part of (sharded-eval.ts), by step. */
  sharded: Set<number>;
}

/** Takes a new assignment: supersedes the current run, shows the new one, drives it to its end. */
export function startRun(core: WorkerCore, assign: Assign): void {
  core.current?.abort.abort(new AbortError('superseded by a new assignment'));
  const run = newRunState(assign);
  core.current = run;
  const { stages: p } = runShape(assign.config);
  // The ranges this rank holds: range c is on the peer of stage c mod P (several when interleaved).
  const mine = assign.stages?.filter((_, c) => c % p === assign.rank % p) ?? [];
  const range = mine[0];
  core.update({
    stage:
      assign.role.kind === 'stage' && range
        ? {
            stage: assign.role.stage,
            replica: assign.role.replica,
            stages: p,
            ...range,
            ...(mine.length > 1 ? { chunks: mine } : {}),
          }
        : null,
    phase: 'loading',
    runId: assign.runId,
    rank: assign.rank,
    worldSize: assign.peers.length,
    role: assign.role.kind,
    shard: assign.shard,
    step: 0,
    totalSteps: assign.config.steps,
    loss: null,
    links: null,
  });
  runLoop(core, run)
    .then(
      () => {
        if (core.current === run) core.update({ phase: 'idle' });
      },
      (e: unknown) => {
        const err = asError(e);
        // Stopped, superseded or left; or dropped by the coordinator (heartbeat.ts), or taken
        // away by a rejoin (the coordinator went away: coordinator-return.ts): no one has a use
        // for this run's errors any more.
        const detached = core.current !== run || run.abort.signal.reason instanceof DroppedError;
        if (err.name === 'AbortError' || detached) {
          if (core.current === run && !core.lifetime.aborted) core.update({ phase: 'idle' });
          return;
        }
        core.update({ phase: 'error', lastError: toWireError(err) });
        core.tell({ type: 'error', runId: assign.runId, error: toWireError(err) });
      },
    )
    .finally(() => {
      if (core.current === run) core.current = null;
    });
}

/** Drives `run` until it is aborted (stop, a new assignment, a lost peer, leaving); disposes on the way out. */
async function runLoop(core: WorkerCore, run: RunState): Promise<void> {
  const { assign } = run;
  const { config, runId } = assign;
  const signal = AbortSignal.any([run.abort.signal, core.lifetime]);
  const loadStart = core.now();
  const compute = core.compute;
  if (!compute) throw new Error('compute engine not ready');
  const method = workerMethod(methodName(config));
  let session: TrainSession | null = null;
  let m: MethodRun | null = null;
  // A joiner links when its epoch says with whom (elastic.ts).
  const links = assign.peers.length > 1 && assign.joining !== true ? method.links(assign) : null;
  try {
    const [s] = await Promise.all([
      compute.prepare({ config, shard: assign.shard, allShards: assign.allShards }, { signal }),
      links ? openLinks(core.mesh, links, core.connectTimeoutMs, signal) : undefined,
    ]);
    session = s;
    run.bytesAtStart = peerBytesSent(core);
    const spans = new SpanRecorder({
      peerId: core.mesh.localId,
      now: core.now,
      capacity: MAX_SPANS_PER_STEP,
    });
    const { mesh } = core;
    const onHeld = (count: number): void => void (run.savedActivations = count);
    const restore = await receiveResume(core, assign, session.paramCount, signal);
    const { coordinatorId } = core;
    m = method.setup({
      mesh,
      assign,
      session,
      signal,
      spans,
      onHeld,
      coordinatorId,
      ...(restore ? { restore } : {}),
    });
    if (assign.resume) run.completed = assign.resume.step; // the steps before are in `restore`
    run.paramBytes = m.paramBytes;
    const counts = links ? linkCounts(core.mesh, [...links.dial, ...links.need]) : null;
    core.tell({ type: 'ready', runId, loadMs: core.now() - loadStart, ...(counts ? { links: counts } : {}) });
    core.update({ links: counts });
    core.update({ phase: 'training' });
    const reports = new StepReports((msg) => core.tell(msg), core.now);
    const d: Driver = { core, run, method: m, session, spans, signal, reports, sharded: new Set() };
    for (;;) {
      signal.throwIfAborted();
      // Elastic: a new epoch redoes from its fromStep; held reports of the steps it redoes are void.
      const from = rewind(run);
      if (from !== null) reports.dropFrom(from);
      // An epoch with no step left to redo (an elastic pipeline's stage lost at the final gather):
      // nothing else would take it, so it is taken here and the evaluation prepared again.
      if (from !== null && from === run.endStep && m.takeEpochAtEnd) {
        await m.takeEpochAtEnd(from);
        await prepareEval(d, from);
      }
      if (granted(run)) await runStep(d);
      await runEvals(d);
      if (run.pendingReference) await runReference(d);
      if (!granted(run) && run.pendingEvals.length === 0 && !run.pendingReference) {
        reports.flush(); // the coordinator grants from the reports it has
        if (run.completed === run.endStep) core.update({ phase: 'done' });
        await waitForWork(run, signal);
      }
    }
  } finally {
    m?.dispose();
    session?.dispose();
  }
}

/** A step is left to run (the target not yet reached) and the coordinator has granted it. */
function granted(run: RunState): boolean {
  return run.completed < run.endStep && run.completed <= run.grantedUpTo;
}

/** Runs the next granted step, reports it, and prepares the evaluation it makes due. */
async function runStep(d: Driver): Promise<void> {
  const { core, run, method, spans, signal, reports } = d;
  const { config, runId } = run.assign;
  const step = run.completed;
  const t0 = core.now();
  // Since the last step ended: the grant's wait, reports (none before the first step); not the
  // evaluations and the reference, which are not training.
  const idleMs = run.lastStepEndMs === null ? null : Math.max(0, t0 - run.lastStepEndMs - run.asideMs);
  run.asideMs = 0;
  const outcome = await method.step(step).catch(redo);
  if (!outcome) return;
  const { loss, computeMs: measured, activation, staleness, extraSamples } = outcome;
  const computeMs = await slowedDown(run, measured, signal);
  if (activation) run.peakActivationBytes = activation.peakActivationBytes;
  const t2 = core.now();
  run.lastStepEndMs = t2;
  run.completed = step + 1;
  // A checkpointed step's report goes at once, right behind its state, with those held before it.
  const checkpoint = checkpointDue(config.checkpointEvery, run.completed);
  if (checkpoint) reports.flush();
  await sendCheckpointIfDue(core, run, method, signal); // ahead of stepDone, on the same link
  const hold = !checkpoint && (method.holdReport?.(step) ?? false);
  reports.add(
    {
      type: 'stepDone',
      runId,
      step,
      ...(loss !== null ? { loss } : {}),
      samples: config.batch,
      computeMs,
      commMs: Math.max(0, t2 - t0 - computeMs),
      ...(idleMs !== null ? { idleMs } : {}),
      bytesSent: peerBytesSent(core) - run.bytesAtStart,
      spans: spans.drain().map(toWireSpan),
      ...(activation ?? {}),
      ...(staleness !== undefined ? { staleness } : {}),
      ...(extraSamples !== undefined ? { extraSamples } : {}),
    },
    hold,
  );
  // The page's memory line follows every step, not only the coordinator's (sparse) pings.
  core.update({
    step: run.completed,
    ...(loss !== null ? { loss } : {}),
    ...memoryReport(core.compute?.memory?.() ?? null, run),
  });
  if (config.evalEvery > 0 && run.completed % config.evalEvery === 0) run.evalOwed = true;
  // DiLoCo's evalParams move only at round ends: an evaluation due mid-round would repeat the last.
  const due = run.completed === config.steps || (run.evalOwed && (method.evalReady?.(run.completed) ?? true));
  if (due) run.evalOwed = false;
  if (due) await prepareEval(d, run.completed);
}

/**
 * Before the evaluation after `after` steps: the method's part on every worker (a pipeline's
 * gather), then the evaluation queued where it runs. After a synchronous step every replica holds
 * the same parameters: rank 0 (the leader) evaluates, or every rank its part (sharded-eval.ts)
 * where the method says they all hold them. An elastic pipeline's gather that an epoch aborted
 * queues nothing: the loop rewinds, and the evaluation comes due again.
 */
async function prepareEval(d: Driver, after: number): Promise<void> {
  const { core, run, method, sharded } = d;
  if (!(await method.beforeEval(after).then(() => true, redo))) return;
  const shared = method.sharedEval === true && run.assign.peers.length > 1;
  if (!shared && !leads(run, core.mesh.localId)) return;
  if (!run.pendingEvals.includes(after)) run.pendingEvals.push(after);
  if (shared) sharded.add(after);
}

/** Elastic: a StepRedoError means the loop rewinds to the epoch's step (null); anything else fails. */
function redo(e: unknown): null {
  if (e instanceof StepRedoError) return null;
  throw e;
}

/**
 * Fault injection ('slow'): stretches the step's computation to `slowFactor` times what it took by
 * sleeping the difference after the step, as a slower device would; the reported compute time is
 * the stretched one. No-op at factor 1.
 */
async function slowedDown(run: RunState, computeMs: number, signal: AbortSignal): Promise<number> {
  const extra = (run.slowFactor - 1) * computeMs;
  if (extra <= 0) return computeMs;
  await sleep(extra, signal);
  return computeMs + extra;
}

/**
 * Evaluates every queued step. After the last step, or when the evaluation of the step just done
 * reaches the target accuracy (which ends the run there: no further step runs), the trained model
 * goes to the coordinator first, on the same ordered link as the result.
 */
async function runEvals({ core, run, method, session, signal, reports, sharded }: Driver): Promise<void> {
  const { config, runId } = run.assign;
  if (run.pendingEvals.length > 0) reports.flush(); // the evaluated steps' reports go first
  while (run.pendingEvals.length > 0) {
    const evalStep = run.pendingEvals.shift()!;
    const t0 = core.now();
    await method.syncParams?.();
    const p = heldModel(method);
    const r = sharded.delete(evalStep)
      ? await shardedEvaluate(core.mesh, session, run.assign, p, evalStep, signal)
      : await session.evaluate(p, { signal });
    run.asideMs += core.now() - t0;
    if (r === null) continue; // this rank's part went to rank 0
    const target = config.targetAccuracy;
    const reached = target !== undefined && r.accuracy >= target && evalStep === run.completed;
    if (reached) run.endStep = evalStep;
    if (evalStep === config.steps || reached) {
      await core.mesh.sendTensor(
        core.coordinatorId,
        {
          ...finalParamsKey(runId, evalStep),
          dtype: 'float32',
          shape: [p.length],
          data: new Uint8Array(p.buffer, p.byteOffset, p.byteLength),
        },
        { signal },
      );
    }
    core.tell({
      type: 'evalResult',
      runId,
      step: evalStep,
      accuracy: r.accuracy,
      loss: r.loss,
      count: r.count,
      ...(reached ? { final: true } : {}),
    });
  }
}

async function runReference({ core, run, method, session, signal, reports }: Driver): Promise<void> {
  reports.flush();
  run.pendingReference = false;
  core.update({ phase: 'reference' });
  const t0 = core.now();
  await method.syncParams?.();
  const diff = await session.reference(heldModel(method), { signal });
  run.asideMs += core.now() - t0;
  core.tell({ type: 'referenceResult', runId: run.assign.runId, ...diff });
  core.update({ phase: 'training' });
}

/** The whole model this worker holds; asking a pipeline stage other than rank 0 is the coordinator's bug. */
function heldModel(method: MethodRun): Float32Array {
  if (!method.evalParams)
    throw new ProtocolError('bad-message', 'this worker holds no whole model to evaluate');
  return method.evalParams;
}

/** Bytes this worker sent to other workers (gradients, parameters): the coordinator link excluded. */
function peerBytesSent({ mesh, coordinatorId }: WorkerCore): number {
  let sum = 0;
  for (const [peer, s] of Object.entries(mesh.stats().perPeer))
    if (peer !== coordinatorId) sum += s.bytesSent;
  return sum;
}

/** A recorded span as the wire carries it: the recorder's peer id is the sender's, known from the link. */
function toWireSpan(span: Span): WireSpan {
  const wire: WireSpan = {
    kind: span.kind,
    startMs: span.startMs,
    durMs: span.durMs,
    step: span.step,
    lane: span.lane,
  };
  if (span.microBatch !== undefined) wire.microBatch = span.microBatch;
  if (span.chunk !== undefined) wire.chunk = span.chunk;
  if (span.bytes !== undefined) wire.bytes = span.bytes;
  if (span.peer !== undefined) wire.peer = span.peer;
  return wire;
}
