import {
  PROTOCOL_VERSION,
  PeerLostError,
  PhaseTimeoutError,
  ProtocolError,
  runShape,
  toWireError,
} from '@peertrain/protocol';
import { AbortError, sleep } from '@peertrain/base';
import type { ControlMessage, ToCoordinator, ToWorker, WireSpan } from '@peertrain/protocol';
import { createParameterServer, psWorkerStep, ringAllReduce } from '@peertrain/collective';
import { createOptimizer } from '@peertrain/optim';
import { schedule } from '@peertrain/schedules';
import type { Mesh } from '@peertrain/transport';
import type { Compute, EngineMemory, StageSession, TrainSession } from './compute.ts';
import { PARAM_TAG_BASE, f32View, runPipelineStep } from './pipeline.ts';
import { finalParamsKey } from '@peertrain/protocol';
import type { WorkerRuntime, WorkerStatus } from './types.ts';

export interface WorkerRuntimeInit {
  mesh: Mesh;
  room: string;
  coordinatorId: string;
  /** Builds the compute engine (probing backends); called once, before joining. */
  compute: (opts: { signal: AbortSignal }) => Promise<Compute>;
  now?: () => number;
  joinTimeoutMs?: number;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

type Assign = Extract<ToWorker, { type: 'assign' }>;

/** One assigned run: commands from the coordinator queue here and the loop drains them in order. */
interface RunState {
  assign: Assign;
  abort: AbortController;
  grantedUpTo: number;
  completed: number;
  pendingEvals: number[];
  pendingReference: boolean;
  wake: (() => void) | null;
  params: Float32Array | null;
  /** What the run holds, for the memory report: parameters (model or stage), last step's activation peak. */
  paramBytes: number;
  peakActivationBytes: number | null;
  /** Pipeline stage: micro-batches whose activations it holds right now (1F1B keeps at most P). */
  savedActivations: number | null;
}

/** How long a bandwidth probe's payload may take to arrive after its announcement. */
const PROBE_TIMEOUT_MS = 10_000;
/** Pause between dials while the coordinator's id is unknown to the signaling server. */
export const JOIN_RETRY_MS = 1_000;

export function createWorkerRuntime(init: WorkerRuntimeInit): WorkerRuntime {
  const { mesh, room, coordinatorId } = init;
  const now = init.now ?? (() => performance.now());
  const lifetime = new AbortController();
  const onOuterAbort = (): void => lifetime.abort(init.signal?.reason ?? new AbortError('worker stopped'));
  init.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const listeners = new Set<(s: WorkerStatus) => void>();
  let status: WorkerStatus = {
    phase: 'probing',
    peerId: mesh.localId,
    room,
    device: null,
    runId: null,
    rank: null,
    worldSize: null,
    role: null,
    shard: null,
    stage: null,
    step: 0,
    totalSteps: 0,
    loss: null,
    bytesSent: 0,
    bytesReceived: 0,
    framesRefused: 0,
    lastError: null,
    memory: null,
  };
  let compute: Compute | null = null;
  let current: RunState | null = null;
  let welcomed: ((ok: true | Error) => void) | null = null;

  /** Bytes this worker sent to other workers (gradients, parameters): the coordinator link excluded. */
  function peerBytesSent(): number {
    let sum = 0;
    for (const [peer, s] of Object.entries(mesh.stats().perPeer))
      if (peer !== coordinatorId) sum += s.bytesSent;
    return sum;
  }

  function update(patch: Partial<WorkerStatus>): void {
    const t = mesh.stats().total;
    status = { ...status, ...patch, bytesSent: t.bytesSent, bytesReceived: t.bytesReceived };
    for (const l of listeners) l(status);
  }

  function tell(msg: ToCoordinator): void {
    mesh.sendControl(coordinatorId, msg).catch(() => {
      // The coordinator link is gone; onPeer('close') reports it.
    });
  }

  const offError = mesh.onError((from, err) => {
    if (err instanceof ProtocolError) {
      // A malformed frame: refused and reported, training goes on.
      update({ framesRefused: status.framesRefused + 1, lastError: toWireError(err) });
      tell({ type: 'frameRefused', from, error: toWireError(err) });
    }
  });

  const offPeer = mesh.onPeer((peerId, event) => {
    if (event !== 'close') return;
    if (peerId === coordinatorId) {
      current?.abort.abort(new PeerLostError(peerId, 'coordinator went away'));
      update({ phase: 'error', lastError: toWireError(new PeerLostError(peerId, 'coordinator went away')) });
    } else if (current?.assign.peers.includes(peerId)) {
      current.abort.abort(new PeerLostError(peerId));
    }
  });

  const offControl = mesh.onControl((from, msg: ControlMessage) => {
    if (from !== coordinatorId) return; // peers talk tensors; control comes from the coordinator only
    switch (msg.type) {
      case 'welcome':
        welcomed?.(true);
        return;
      case 'reject':
        welcomed?.(new Error(`rejected by coordinator: ${msg.reason}`));
        return;
      case 'ping': {
        const report = memoryReport(compute?.memory?.() ?? null);
        tell({ type: 'pong', id: msg.id, t0: msg.t0, tWorker: now(), ...report });
        if (report.memory) update({ memory: report.memory });
        return;
      }
      case 'probe': {
        // The payload follows on the same ordered link; ack once it is all here (the coordinator times it).
        const key = { runId: 0, step: msg.id, microBatch: null, tag: msg.tag };
        const signal = AbortSignal.any([lifetime.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]);
        mesh.recvTensor(coordinatorId, key, { signal }).then(
          (t) => tell({ type: 'probeAck', id: msg.id, bytes: t.data.byteLength }),
          (e: unknown) => tell({ type: 'probeAck', id: msg.id, bytes: 0, error: toWireError(asError(e)) }),
        );
        return;
      }
      case 'assign':
        startRun(msg);
        return;
      case 'profile': {
        const c = compute;
        if (!c) return;
        c.profile(msg.config, { signal: lifetime.signal }).then(
          (layers) => tell({ type: 'profileResult', runId: msg.runId, layers }),
          (e: unknown) => tell({ type: 'error', runId: msg.runId, error: toWireError(asError(e)) }),
        );
        return;
      }
      case 'step':
        if (current && current.assign.runId === msg.runId) {
          current.grantedUpTo = Math.max(current.grantedUpTo, msg.upTo);
          poke(current);
        }
        return;
      case 'evaluate':
        if (current && current.assign.runId === msg.runId) {
          current.pendingEvals.push(msg.step);
          poke(current);
        }
        return;
      case 'reference':
        if (current && current.assign.runId === msg.runId) {
          current.pendingReference = true;
          poke(current);
        }
        return;
      case 'stop':
        if (current && current.assign.runId === msg.runId)
          current.abort.abort(new AbortError(`stopped: ${msg.reason}`));
        return;
      default:
        return; // other directions' messages are not for a worker
    }
  });

  /** The engine's tf.memory() and what the current run holds; nothing before the engine is up. */
  function memoryReport(m: EngineMemory | null): {
    memory?: NonNullable<Extract<ToCoordinator, { type: 'pong' }>['memory']>;
  } {
    if (!m) return {};
    const run = current;
    return {
      memory: {
        ...m,
        ...(run && run.paramBytes > 0 ? { paramBytes: run.paramBytes } : {}),
        ...(run?.peakActivationBytes != null ? { peakActivationBytes: run.peakActivationBytes } : {}),
        ...(run?.savedActivations != null ? { savedActivations: run.savedActivations } : {}),
      },
    };
  }

  function poke(run: RunState): void {
    const w = run.wake;
    run.wake = null;
    w?.();
  }

  function startRun(assign: Assign): void {
    current?.abort.abort(new AbortError('superseded by a new assignment'));
    const run: RunState = {
      assign,
      abort: new AbortController(),
      grantedUpTo: -1,
      completed: 0,
      pendingEvals: [],
      pendingReference: false,
      wake: null,
      params: null,
      paramBytes: 0,
      peakActivationBytes: null,
      savedActivations: null,
    };
    current = run;
    const { stages: p } = runShape(assign.config);
    const range = assign.stages?.[assign.rank % p];
    update({
      stage:
        assign.role.kind === 'stage' && range
          ? { stage: assign.role.stage, replica: assign.role.replica, stages: p, ...range }
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
    });
    runLoop(run)
      .then(
        () => {
          if (current === run) update({ phase: 'idle' });
        },
        (e: unknown) => {
          const err = asError(e);
          if (err.name === 'AbortError') {
            if (current === run && !lifetime.signal.aborted) update({ phase: 'idle' });
            return;
          }
          update({ phase: 'error', lastError: toWireError(err) });
          tell({ type: 'error', runId: assign.runId, error: toWireError(err) });
        },
      )
      .finally(() => {
        if (current === run) current = null;
      });
  }

  /** Waits until `peerId` has an open link (it dials us, or we dial it). */
  function waitConnected(peerId: string, signal: AbortSignal): Promise<void> {
    if (mesh.isConnected(peerId)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = mesh.onPeer((id, ev) => {
        if (id === peerId && ev === 'open') {
          cleanup();
          resolve();
        }
      });
      const onAbort = (): void => {
        cleanup();
        reject(asError(signal.reason));
      };
      const cleanup = (): void => {
        off();
        signal.removeEventListener('abort', onAbort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (mesh.isConnected(peerId)) {
        cleanup();
        resolve();
      }
    });
  }

  async function connectPeers(assign: Assign, signal: AbortSignal): Promise<void> {
    const { peers, rank, config } = assign;
    const n = peers.length;
    if (n === 1) return;
    const timeoutMs = init.connectTimeoutMs ?? 60_000;
    const s = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const need: string[] = [];
    const dial: string[] = [];
    if (config.strategy !== 'data') {
      const { stages: p, replicas: r } = runShape(config);
      const stage = rank % p;
      const replica = Math.floor(rank / p);
      const at = (rep: number, st: number): string => peers[rep * p + st]!;
      // Pipeline neighbours: we dial the next stage; the previous one dials us.
      if (stage + 1 < p) {
        dial.push(at(replica, stage + 1));
        need.push(at(replica, stage + 1));
      }
      if (stage > 0) need.push(at(replica, stage - 1));
      // Hybrid: the stage group's ring over the replicas.
      if (r > 1) {
        dial.push(at((replica + 1) % r, stage));
        need.push(at((replica + 1) % r, stage), at((replica - 1 + r) % r, stage));
      }
      // Replica 0's stages send their parameters to rank 0 for evaluation.
      if (replica === 0 && stage >= 2) {
        dial.push(peers[0]!);
        need.push(peers[0]!);
      }
      if (rank === 0) for (let st = 2; st < p; st++) need.push(at(0, st));
    } else if (config.sync === 'allreduce') {
      // Ring: we send to the next rank and receive from the previous one.
      const next = peers[(rank + 1) % n]!;
      const prev = peers[(rank - 1 + n) % n]!;
      dial.push(next);
      need.push(next, prev);
    } else {
      const server = peers[assign.serverRank ?? 0]!;
      if (peers[rank] === server) need.push(...peers.filter((p) => p !== server));
      else {
        dial.push(server);
        need.push(server);
      }
    }
    try {
      await Promise.all([...new Set(dial)].map((p) => mesh.connect(p, { signal: s })));
      await Promise.all(need.map((p) => waitConnected(p, s)));
    } catch (e) {
      if (signal.aborted) throw asError(signal.reason);
      if (s.aborted) throw new PhaseTimeoutError('connecting to peers', timeoutMs);
      throw e;
    }
  }

  async function runLoop(run: RunState): Promise<void> {
    const { assign } = run;
    const { config, peers, rank, runId } = assign;
    const signal = AbortSignal.any([run.abort.signal, lifetime.signal]);
    const loadStart = now();
    if (!compute) throw new Error('compute engine not ready');
    let session: TrainSession | null = null;
    try {
      const [s] = await Promise.all([
        compute.prepare({ config, shard: assign.shard, allShards: assign.allShards }, { signal }),
        connectPeers(assign, signal),
      ]);
      session = s;
      const full = session.initParams();
      const isPipe = config.strategy !== 'data';
      const shape = runShape(config);
      const p = shape.stages;
      const stageIdx = rank % p;
      const replica = Math.floor(rank / p);
      const ranges = assign.stages ?? [];
      let stage: StageSession | null = null;
      if (isPipe) {
        const range = ranges[stageIdx];
        if (!range) throw new ProtocolError('bad-message', 'a stage assignment without stage ranges');
        stage = session.stage(range);
      }
      // Data parallel: every worker holds the whole model. Pipeline: the stage's slice only (rank 0
      // also keeps a whole-model buffer that the stages' parameters are gathered into for evaluation).
      const params = stage ? full.slice(stage.paramOffset, stage.paramOffset + stage.paramCount) : full;
      const evalParams = !stage ? params : rank === 0 ? full : null;
      run.params = evalParams;
      run.paramBytes = params.byteLength;
      const optimizer = createOptimizer(config.optimizer, config.lr, params.length);
      const n = peers.length;
      const serverId = !isPipe && config.sync === 'ps' ? peers[assign.serverRank ?? 0]! : null;
      const server =
        serverId === mesh.localId
          ? createParameterServer(mesh, {
              workers: peers,
              params,
              runId,
              apply: (p, meanGrad) => optimizer.step(p, meanGrad),
            })
          : null;
      const ops = stage ? schedule(config.schedule, p, config.microBatches)[stageIdx]! : [];
      const at = (rep: number, st: number): string => peers[rep * p + st]!;
      const group = Array.from({ length: shape.replicas }, (_, r) => at(r, stageIdx));
      const stageGrads = new Float32Array(params.length);
      tell({ type: 'ready', runId, loadMs: now() - loadStart });
      update({ phase: 'training' });

      /** One data-parallel step: gradients, then all-reduce or the parameter server. */
      const dataStep = async (
        step: number,
        spans: WireSpan[],
      ): Promise<{ loss: number; computeMs: number }> => {
        const t0 = now();
        const { loss, grads } = await session!.gradients(params, step, { signal });
        const t1 = now();
        spans.push({ kind: 'compute', startMs: t0, durMs: t1 - t0, step, lane: 'compute' });
        if (config.sync === 'allreduce') {
          // The timeline shows the ring's two halves: when any bucket was in reduce-scatter or all-gather.
          await ringAllReduce(mesh, peers, grads, {
            runId,
            step,
            bucketElems: config.bucketElems,
            signal,
            now,
            onPhase: (kind, startMs, endMs) =>
              spans.push({ kind, startMs, durMs: endMs - startMs, step, lane: 'comm' }),
          });
          const inv = 1 / n;
          for (let i = 0; i < grads.length; i++) grads[i]! *= inv;
          optimizer.step(params, grads);
        } else if (server) {
          await server.serveStep(step, grads, { signal });
        } else {
          params.set(await psWorkerStep(mesh, serverId!, grads, { runId, step, signal }));
        }
        // The whole exchange (push/pull with a parameter server), or the ring with its phases above.
        if (config.sync !== 'allreduce') {
          spans.push({ kind: 'allreduce', startMs: t1, durMs: now() - t1, step, lane: 'comm' });
        }
        return { loss, computeMs: t1 - t0 };
      };

      /** Replica 0's stages hand their parameters to rank 0, which evaluates the whole model. */
      const gatherParams = async (step: number): Promise<void> => {
        if (!stage || replica !== 0) return;
        const key = (st: number) => ({ runId, step, microBatch: null, tag: PARAM_TAG_BASE + st });
        if (rank !== 0) {
          if (params.length === 0) return;
          const bytes = new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
          await mesh.sendTensor(
            peers[0]!,
            { ...key(stageIdx), dtype: 'float32', shape: [params.length], data: bytes },
            { signal },
          );
          return;
        }
        full.set(params, stage.paramOffset);
        await Promise.all(
          ranges.map(async (range, st) => {
            if (st === 0) return;
            const { offset, count } = session!.paramRange(range);
            if (count === 0) return;
            const msg = await mesh.recvTensor(at(0, st), key(st), { signal });
            const got = f32View(msg.data);
            if (got.length !== count)
              throw new ProtocolError(
                'bad-message',
                `stage ${st} sent ${got.length} parameters, expected ${count}`,
              );
            full.set(got, offset);
          }),
        );
      };

      for (;;) {
        signal.throwIfAborted();
        if (run.completed < config.steps && run.completed <= run.grantedUpTo) {
          const step = run.completed;
          const spans: WireSpan[] = [];
          const t0 = now();
          let loss: number | null;
          let computeMs: number;
          let peak: { peakActivationBytes: number; peakActivationBytesNoRecompute: number } | null = null;
          if (stage) {
            const outcome = await runPipelineStep({
              mesh,
              runId,
              step,
              ops,
              stage,
              prev: stageIdx > 0 ? at(replica, stageIdx - 1) : null,
              next: stageIdx + 1 < p ? at(replica, stageIdx + 1) : null,
              params,
              grads: stageGrads,
              now,
              spans,
              signal,
              onHeld: (count) => (run.savedActivations = count),
              optimizer: async () => {
                if (group.length > 1 && params.length > 0) {
                  const ta = now();
                  await ringAllReduce(mesh, group, stageGrads, {
                    runId,
                    step,
                    bucketElems: config.bucketElems,
                    signal,
                  });
                  const inv = 1 / group.length;
                  for (let i = 0; i < stageGrads.length; i++) stageGrads[i]! *= inv;
                  spans.push({
                    kind: 'allreduce',
                    startMs: ta,
                    durMs: now() - ta,
                    step,
                    lane: 'comm',
                    bytes: stageGrads.byteLength,
                  });
                }
                const to = now();
                optimizer.step(params, stageGrads);
                spans.push({ kind: 'optimizer', startMs: to, durMs: now() - to, step, lane: 'compute' });
              },
            });
            loss = outcome.loss;
            peak = outcome;
            run.peakActivationBytes = outcome.peakActivationBytes;
            computeMs = spans.reduce((a, sp) => (sp.lane === 'compute' ? a + sp.durMs : a), 0);
          } else {
            const r = await dataStep(step, spans);
            loss = r.loss;
            computeMs = r.computeMs;
          }
          const t2 = now();
          run.completed = step + 1;
          tell({
            type: 'stepDone',
            runId,
            step,
            ...(loss !== null ? { loss } : {}),
            samples: config.batch,
            computeMs,
            commMs: Math.max(0, t2 - t0 - computeMs),
            bytesSent: peerBytesSent(),
            spans,
            ...(peak
              ? {
                  peakActivationBytes: peak.peakActivationBytes,
                  peakActivationBytesNoRecompute: peak.peakActivationBytesNoRecompute,
                }
              : {}),
          });
          // The page's memory line follows every step, not only the coordinator's (sparse) pings.
          update({
            step: run.completed,
            ...(loss !== null ? { loss } : {}),
            ...memoryReport(compute?.memory?.() ?? null),
          });
          const due =
            run.completed === config.steps ||
            (config.evalEvery > 0 && run.completed % config.evalEvery === 0);
          if (due) await gatherParams(run.completed);
          // After a synchronous step every replica holds the same parameters: rank 0 evaluates.
          if (due && rank === 0) run.pendingEvals.push(run.completed);
        }
        while (run.pendingEvals.length > 0) {
          const evalStep = run.pendingEvals.shift()!;
          const r = await session.evaluate(evalParams!, { signal });
          if (evalStep === config.steps) {
            // The trained model goes to the coordinator (for export) ahead of the final result.
            const p = evalParams!;
            await mesh.sendTensor(
              coordinatorId,
              {
                ...finalParamsKey(runId, config.steps),
                dtype: 'float32',
                shape: [p.length],
                data: new Uint8Array(p.buffer, p.byteOffset, p.byteLength),
              },
              { signal },
            );
          }
          tell({
            type: 'evalResult',
            runId,
            step: evalStep,
            accuracy: r.accuracy,
            loss: r.loss,
            count: r.count,
          });
        }
        if (run.pendingReference) {
          run.pendingReference = false;
          update({ phase: 'reference' });
          const diff = await session.reference(evalParams!, { signal });
          tell({ type: 'referenceResult', runId, ...diff });
          update({ phase: 'training' });
        }
        const more = run.completed < config.steps && run.completed <= run.grantedUpTo;
        if (!more && run.pendingEvals.length === 0 && !run.pendingReference) {
          if (run.completed === config.steps) update({ phase: 'done' });
          // Sleep until the coordinator grants a step, asks for an eval or the reference, or the
          // run is aborted; the abort listener goes with the wake so idle waits do not pile up.
          await new Promise<void>((resolve, reject) => {
            const onAbort = (): void => reject(asError(signal.reason));
            run.wake = () => {
              signal.removeEventListener('abort', onAbort);
              resolve();
            };
            signal.addEventListener('abort', onAbort, { once: true });
          });
        }
      }
    } finally {
      session?.dispose();
    }
  }

  /**
   * Links to the coordinator. Its id may not be on the signaling server yet (the worker link was
   * opened before the dashboard, or the dashboard is reloading): dial again every JOIN_RETRY_MS
   * until the join timeout, then fail with the last PeerLostError. Other errors fail at once.
   */
  async function dialCoordinator(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    for (;;) {
      try {
        await mesh.connect(coordinatorId, { signal: deadline });
        return;
      } catch (err) {
        signal.throwIfAborted();
        if (!(err instanceof PeerLostError)) throw err;
        if (deadline.aborted) throw err;
        await sleep(JOIN_RETRY_MS, deadline).catch(() => {
          signal.throwIfAborted();
          throw err; // the join timeout passed while waiting: the coordinator never came
        });
      }
    }
  }

  async function main(): Promise<void> {
    const signal = lifetime.signal;
    update({ phase: 'probing' });
    compute = await init.compute({ signal });
    update({ phase: 'joining', device: compute.device });
    const timeoutMs = init.joinTimeoutMs ?? 30_000;
    await dialCoordinator(signal, timeoutMs);
    const welcome = new Promise<true | Error>((resolve) => (welcomed = resolve));
    const hello: ToCoordinator = {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      room,
      device: compute.device,
    };
    await mesh.sendControl(coordinatorId, hello, { signal });
    const timer = AbortSignal.timeout(timeoutMs);
    const answer = await Promise.race([
      welcome,
      new Promise<Error>((resolve) =>
        timer.addEventListener('abort', () => resolve(new PhaseTimeoutError('joining the room', timeoutMs)), {
          once: true,
        }),
      ),
    ]);
    welcomed = null;
    if (answer !== true) throw answer;
    update({ phase: 'idle' });
  }

  main().catch((e: unknown) => {
    const err = asError(e);
    if (!lifetime.signal.aborted) update({ phase: 'error', lastError: toWireError(err) });
  });

  return {
    status: () => status,
    subscribe(listener) {
      listeners.add(listener);
      listener(status);
      return () => listeners.delete(listener);
    },
    async leave(reason = 'left') {
      if (lifetime.signal.aborted) return;
      try {
        await mesh.sendControl(
          coordinatorId,
          { type: 'leave', reason },
          { signal: AbortSignal.timeout(2000) },
        );
      } catch {
        // leaving anyway
      }
      lifetime.abort(new AbortError(reason));
      current?.abort.abort(new AbortError(reason));
      init.signal?.removeEventListener('abort', onOuterAbort);
      offControl();
      offError();
      offPeer();
      compute?.dispose();
      await mesh.close();
      update({ phase: 'left' });
      listeners.clear();
    },
  };
}

function asError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new AbortError(typeof e === 'string' ? e : 'aborted');
}
