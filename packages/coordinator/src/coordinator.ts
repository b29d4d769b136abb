import {
  ConfigError,
  DATASETS,
  PROBE_TAG,
  PROTOCOL_VERSION,
  PeerLostError,
  PhaseTimeoutError,
  ProtocolError,
  coordinatorPeerId,
  finalParamsKey,
  isPeerOfRoom,
  parsePartition,
  parseRunConfig,
  probeKey,
  runShape,
  toWireError,
} from '@peertrain/protocol';
import { AbortError, sleep } from '@peertrain/base';
import type {
  LayerCost,
  ControlMessage,
  RunConfig,
  RunConfigInput,
  ToCoordinator,
  ToWorker,
  WireError,
  WireSpan,
} from '@peertrain/protocol';
import { evaluatePartition, planShards, planStages } from '@peertrain/planner';
import type { StageDevice, StagePlan } from '@peertrain/planner';
import { ClockSync, RunningMedian, pipelineBubble, toChromeTrace } from '@peertrain/telemetry';
import type { ChromeTrace } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type {
  Coordinator,
  CoordinatorEvent,
  CoordinatorView,
  PeerView,
  RunReport,
  PipelineReport,
  PipelineView,
  PlanPreview,
  RunView,
  StepPoint,
  TimelineSpan,
  TrainedModel,
} from './types.ts';

/** Timers are injected so tests can drive them; defaults are the platform's. */
export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface CoordinatorInit {
  mesh: Mesh;
  room: string;
  now?: () => number;
  timers?: Timers;
  /** Heartbeat / clock-sync ping period. */
  pingEveryMs?: number;
  /** Named phase timeouts. */
  readyTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** Bandwidth probe payload, bytes (0: no probes). Sent after a peer's first pong and between runs. */
  probeBytes?: number;
  /** A peer of a running run that has not reported a step for this long is 'stalled'. */
  stallAfterMs?: number;
  /** Spans the trace export keeps, the newest (default 400,000). */
  traceCapacity?: number;
  /** Per-step pipeline bubbles the view keeps, the newest (default BUBBLE_HISTORY). */
  bubbleHistory?: number;
}

/** How many steps ahead of the slowest finished step workers may run (hides the barrier's round trip). */
const STEP_WINDOW = 2;
/** Steps of spans the live view keeps (a ring: the dashboard's timeline runs for hours). */
export const TIMELINE_STEPS = 12;
/** Spans kept for the trace export; beyond this the oldest go (and the trace says how many). */
const DEFAULT_TRACE_CAPACITY = 400_000;
/** Steps left out of the measured bubble: the first ones warm up kernels and links. */
const BUBBLE_WARMUP_STEPS = 3;
/** Per-step bubbles the view keeps (the dashboard's sparkline); the median covers every step. */
export const BUBBLE_HISTORY = 300;
/**
 * Link speed the planner assumes between stages, bytes/ms: a WebRTC data channel between two tabs
 * measured 18-30 MB/s on the development machine (npm run bench, raw one-way).
 */
const PLANNER_LINK_BYTES_PER_MS = 20_000;
/** Memory assumed for a tab that does not report navigator.deviceMemory, GiB. */
const DEFAULT_DEVICE_GIB = 4;
/**
 * Bandwidth probe: 256 KiB (a single data-channel message at most; a few ms on a LAN link, so
 * RTT/2 does not dominate), keyed by protocol's probeKey (runId 0, a tag no collective uses).
 */
const DEFAULT_PROBE_BYTES = 256 * 1024;
const PROBE_TIMEOUT_MS = 10_000;
/** Longer than an evaluation on a slow backend takes (rank 0 evaluates between steps). */
const DEFAULT_STALL_AFTER_MS = 15_000;

interface PeerRecord extends PeerView {
  joinedAt: number;
  clock: ClockSync;
  /** When the peer last reported a step (coordinator clock), null outside runs. */
  lastReportAt: number | null;
  /** The bandwidth probe in flight, if any (aborted when a run takes the peer). */
  probe: AbortController | null;
}

type StepDoneMsg = Extract<ToCoordinator, { type: 'stepDone' }>;

type Waiter = { match: (from: string, msg: ToCoordinator) => boolean; resolve: () => void };

/**
 * Who waits for layer profiles: a run, or a plan preview (`plan()`, its ids negative so that they
 * never meet a run's). Profiles are only taken from `devices`, and only for the current id.
 */
interface ProfileSession {
  runId: number;
  abort: AbortController;
  waiters: Set<Waiter>;
  profiles: Map<string, LayerCost[]>;
}

/** What the planner needs from the profiles of replica 0's devices. */
type PlanInputs = Pick<PlanPreview, 'layers' | 'options'> & { devices: StageDevice[] };

/** A run in flight: everything that must be torn down when it ends. */
interface ActiveRun {
  runId: number;
  config: RunConfig;
  ranks: string[];
  abort: AbortController;
  /** stepDone messages per step, by rank. */
  stepDone: Map<number, Map<number, StepDoneMsg>>;
  evals: Map<number, Extract<ToCoordinator, { type: 'evalResult' }>>;
  reference: Extract<ToCoordinator, { type: 'referenceResult' }> | null;
  ready: Set<string>;
  profiles: Map<string, LayerCost[]>;
  /** Pipeline: per stage (replica 0) the largest peaks reported. */
  peaks: Map<number, { withRe: number; without: number }>;
  errors: WireError[];
  waiters: Set<Waiter>;
  paused: boolean;
  resume: (() => void) | null;
}

export function createCoordinator(init: CoordinatorInit): Coordinator {
  const { mesh, room } = init;
  const now = init.now ?? (() => performance.now());
  const timers: Timers = init.timers ?? {
    setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
    clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
  };
  const readyTimeoutMs = init.readyTimeoutMs ?? 120_000;
  const stepTimeoutMs = init.stepTimeoutMs ?? 120_000;
  const selfId = coordinatorPeerId(room);

  const peers = new Map<string, PeerRecord>();
  const viewListeners = new Set<(v: CoordinatorView) => void>();
  const eventListeners = new Set<(e: CoordinatorEvent) => void>();
  const idleWaiters = new Set<() => void>();
  let runCounter = 0;
  let active: ActiveRun | null = null;
  /** The plan preview in flight (plan()), with the peers it profiles. */
  let planning: (ProfileSession & { devices: ReadonlySet<string> }) | null = null;
  let planCounter = 0;
  let runView: RunView = emptyRun(0);
  let pingId = 0;
  let disposed = false;
  // Spans on the coordinator's clock: every span of the run for the trace, the last steps for the view.
  let traceSpans: TimelineSpan[] = [];
  let traceDropped = 0;
  let traceNames: Record<string, string> = {};
  let liveSpans: TimelineSpan[] = [];
  let trained: TrainedModel | null = null;
  let liveMaxStep = -1;
  const probeBytes = init.probeBytes ?? DEFAULT_PROBE_BYTES;
  const stallAfterMs = init.stallAfterMs ?? DEFAULT_STALL_AFTER_MS;
  const traceCapacity = init.traceCapacity ?? DEFAULT_TRACE_CAPACITY;
  const bubbleHistory = Math.max(1, init.bubbleHistory ?? BUBBLE_HISTORY);
  let probeCounter = 0;
  const probeAcks = new Map<number, (ack: Extract<ToCoordinator, { type: 'probeAck' }>) => void>();
  let probePayload: Uint8Array | null = null;

  function addSpans(from: string, spans: readonly WireSpan[]): void {
    const offset = peers.get(from)?.clockOffsetMs ?? 0; // worker clock minus ours
    let maxStep = liveMaxStep;
    for (const w of spans) {
      const t: TimelineSpan = {
        peerId: from,
        kind: w.kind,
        startMs: w.startMs - offset,
        durMs: w.durMs,
        step: w.step,
        lane: w.lane,
      };
      if (w.microBatch !== undefined) t.microBatch = w.microBatch;
      if (w.bytes !== undefined) t.bytes = w.bytes;
      if (w.peer !== undefined) t.peer = w.peer;
      traceSpans.push(t);
      liveSpans.push(t);
      maxStep = Math.max(maxStep, w.step);
    }
    // Trimmed to the newest traceCapacity once it holds twice that: one copy per traceCapacity
    // spans instead of moving the whole array on every report of a long run.
    if (traceSpans.length > 2 * traceCapacity) {
      const drop = traceSpans.length - traceCapacity;
      traceSpans = traceSpans.slice(drop);
      traceDropped += drop;
    }
    if (maxStep > liveMaxStep) {
      liveMaxStep = maxStep;
      liveSpans = liveSpans.filter((sp) => sp.step > liveMaxStep - TIMELINE_STEPS);
    }
  }

  function emptyRun(runId: number): RunView {
    return {
      runId,
      phase: 'idle',
      config: null,
      step: 0,
      totalSteps: 0,
      steps: [],
      evals: [],
      error: null,
      startedAt: null,
      spans: [],
      pipeline: null,
    };
  }

  function view(): CoordinatorView {
    return {
      room,
      coordinatorId: selfId,
      peers: [...peers.values()].map(({ joinedAt: _j, clock: _c, lastReportAt: _l, probe: _p, ...p }) => ({
        ...p,
      })),
      run: { ...runView },
    };
  }

  function changed(): void {
    const v = view();
    for (const l of viewListeners) l(v);
  }

  function emit(e: CoordinatorEvent): void {
    for (const l of eventListeners) l(e);
  }

  function log(message: string): void {
    emit({ type: 'log', message });
  }

  function send(peerId: string, msg: ToWorker): void {
    mesh.sendControl(peerId, msg).catch((err: unknown) => {
      log(`send ${msg.type} to ${peerId} failed: ${toWireError(err).message}`);
    });
  }

  // ---- membership ----
  const offControl = mesh.onControl((from, msg: ControlMessage) => {
    if (!isToCoordinator(msg)) return;
    handle(from, msg);
  });

  const offPeer = mesh.onPeer((peerId, event) => {
    if (event === 'open') {
      // Linked but not introduced yet: 'joining' until its hello (a worker probes its backends first).
      if (isPeerOfRoom(peerId, room) && peers.get(peerId)?.state !== 'idle') {
        peers.set(peerId, newPeer(peerId, 'joining', null));
        changed();
      }
      return;
    }
    const p = peers.get(peerId);
    if (!p) return;
    p.probe?.abort(new PeerLostError(peerId));
    p.state = 'gone';
    changed();
    if (active && active.ranks.includes(peerId)) {
      failRun(new PeerLostError(peerId, 'left during the run'));
    }
  });

  const offError = mesh.onError((from, err) => {
    if (err instanceof ProtocolError) log(`refused a frame from ${from}: ${err.message}`);
  });

  function handle(from: string, msg: ToCoordinator): void {
    if (msg.type === 'hello') {
      // A refused peer leaves the room's list (it showed as 'joining' since its link opened).
      const refuse = (reason: string): void => {
        send(from, { type: 'reject', reason });
        if (peers.get(from)?.state === 'joining' && peers.delete(from)) changed();
      };
      if (!isPeerOfRoom(from, room) || msg.room !== room) {
        refuse(`this coordinator serves room "${room}"`);
        return;
      }
      if (msg.protocolVersion !== PROTOCOL_VERSION) {
        refuse(`protocol version mismatch: coordinator ${PROTOCOL_VERSION}, worker ${msg.protocolVersion}`);
        return;
      }
      peers.set(from, newPeer(from, 'idle', msg.device));
      send(from, { type: 'welcome', protocolVersion: PROTOCOL_VERSION, room });
      log(`peer ${from} joined (${msg.device.backend}, ${msg.device.gflops.toFixed(2)} GFLOP/s)`);
      changed();
      for (const w of [...idleWaiters]) w();
      return;
    }
    const p = peers.get(from);
    if (!p || p.state === 'joining') return; // not admitted: ignore everything but hello
    if (planning && onPlanMessage(planning, from, msg)) return;
    switch (msg.type) {
      case 'pong': {
        // NTP-style; the minimum-RTT sample of the window wins (telemetry's ClockSync).
        p.clock.add({ t0: msg.t0, t1: msg.tWorker, t3: now() });
        p.rttMs = p.clock.rttMs;
        p.clockOffsetMs = p.clock.offsetMs;
        if (msg.memory) p.memory = { ...msg.memory };
        // The first round trip is known: measure the link once (RTT/2 is taken off the probe's time).
        if (p.bandwidthBytesPerSec === null && p.state === 'idle') void probeBandwidth(p);
        changed();
        return;
      }
      case 'probeAck':
        probeAcks.get(msg.id)?.(msg);
        return;
      case 'frameRefused':
        p.framesRefused++;
        active?.errors.push(msg.error);
        log(`${from} refused a malformed frame from ${msg.from}: ${msg.error.name}: ${msg.error.message}`);
        changed();
        return;
      case 'leave':
        p.state = 'gone';
        changed();
        if (active && active.ranks.includes(from)) failRun(new PeerLostError(from, `left: ${msg.reason}`));
        return;
      case 'error':
        active?.errors.push(msg.error);
        if (active && (msg.runId === undefined || msg.runId === active.runId)) {
          // A worker that lost a peer of the run may say so before this side's own link to that
          // peer closes: either way the run fails naming the lost peer (its report is in errors).
          const lost = msg.error.name === 'PeerLostError' ? msg.error.peerId : undefined;
          if (lost !== undefined && active.ranks.includes(lost)) {
            failRun(new PeerLostError(lost, `seen by ${from}`));
            return;
          }
          const err = new Error(`${from}: ${msg.error.message}`);
          err.name = msg.error.name;
          failRun(err);
        }
        return;
      case 'ready':
      case 'profileResult':
      case 'stepDone':
      case 'evalResult':
      case 'referenceResult':
        if (!active || msg.runId !== active.runId) return;
        onRunMessage(active, from, p, msg);
        return;
      default: {
        const _exhaustive: never = msg;
        return _exhaustive;
      }
    }
  }

  function onRunMessage(run: ActiveRun, from: string, p: PeerRecord, msg: ToCoordinator): void {
    const rank = run.ranks.indexOf(from);
    if (rank < 0) return;
    if (msg.type === 'ready') run.ready.add(from);
    if (msg.type === 'profileResult') run.profiles.set(from, msg.layers);
    if (msg.type === 'stepDone') {
      if (msg.spans && msg.spans.length > 0) addSpans(from, msg.spans);
      if (msg.peakActivationBytes !== undefined && p.stage && p.stage.replica === 0) {
        const prev = run.peaks.get(p.stage.stage) ?? { withRe: 0, without: 0 };
        run.peaks.set(p.stage.stage, {
          withRe: Math.max(prev.withRe, msg.peakActivationBytes),
          without: Math.max(prev.without, msg.peakActivationBytesNoRecompute ?? 0),
        });
      }
      let m = run.stepDone.get(msg.step);
      if (!m) run.stepDone.set(msg.step, (m = new Map<number, StepDoneMsg>()));
      m.set(rank, msg);
      p.lastStep = msg.step;
      p.lastComputeMs = msg.computeMs;
      p.lastCommMs = msg.commMs;
      p.bytesSent = msg.bytesSent;
      p.lastReportAt = now();
      if (p.state !== 'gone') p.state = activityOf(msg);
    }
    if (msg.type === 'evalResult') {
      // Evaluations arrive between steps (rank 0 evaluates): fold them into the live view.
      run.evals.set(msg.step, msg);
      const tMs = runView.startedAt === null ? 0 : now() - runView.startedAt;
      runView = {
        ...runView,
        evals: [...runView.evals, { step: msg.step, accuracy: msg.accuracy, loss: msg.loss, tMs }],
      };
      emit({ type: 'eval', step: msg.step, accuracy: msg.accuracy });
      changed();
    }
    if (msg.type === 'referenceResult') run.reference = msg;
    for (const w of [...run.waiters]) {
      if (w.match(from, msg)) {
        run.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** A plan preview's profile result or error; false when `msg` is not for it. */
  function onPlanMessage(s: NonNullable<typeof planning>, from: string, msg: ToCoordinator): boolean {
    if (msg.type !== 'profileResult' && msg.type !== 'error') return false;
    if (msg.runId !== s.runId) return false;
    if (!s.devices.has(from)) return true;
    if (msg.type === 'error') {
      const err = new Error(`${from}: ${msg.error.message}`);
      err.name = msg.error.name;
      s.abort.abort(err);
      return true;
    }
    s.profiles.set(from, msg.layers);
    for (const w of [...s.waiters]) {
      if (w.match(from, msg)) {
        s.waiters.delete(w);
        w.resolve();
      }
    }
    return true;
  }

  // ---- heartbeat / clock sync ----
  const pingTimer = timers.setInterval(() => {
    const t0 = now();
    for (const p of peers.values()) {
      if (p.state !== 'gone' && p.state !== 'joining') send(p.peerId, { type: 'ping', id: ++pingId, t0 });
    }
    if (checkStalls(t0)) changed();
  }, init.pingEveryMs ?? 1000);

  function newPeer(peerId: string, state: 'joining' | 'idle', device: PeerRecord['device']): PeerRecord {
    return {
      peerId,
      state,
      device,
      rank: null,
      role: null,
      shard: null,
      stage: null,
      rttMs: null,
      clockOffsetMs: null,
      lastStep: null,
      lastComputeMs: null,
      lastCommMs: null,
      bytesSent: 0,
      framesRefused: 0,
      memory: null,
      bandwidthBytesPerSec: null,
      joinedAt: now(),
      clock: new ClockSync(),
      lastReportAt: null,
      probe: null,
    };
  }

  /**
   * Marks the run's peers that went silent 'stalled': no step reported for stallAfterMs while the
   * run is running, and either behind the furthest peer or level with everyone (the whole run is
   * stuck). A peer ahead, waiting at the barrier for one behind, is not stalled. A pause stops
   * the clock. True if any changed.
   */
  function checkStalls(t: number): boolean {
    const run = active;
    if (!run || run.ranks.length === 0) return false;
    const members = run.ranks.flatMap((id) => peers.get(id) ?? []);
    if (runView.phase === 'paused') {
      for (const p of members) if (p.lastReportAt !== null) p.lastReportAt = t;
      return false;
    }
    if (runView.phase !== 'running') return false;
    const since = (p: PeerRecord): number => t - (p.lastReportAt ?? runView.startedAt ?? t);
    const lead = Math.max(...members.map((p) => p.lastStep ?? -1));
    const level = members.every((p) => (p.lastStep ?? -1) === lead);
    let any = false;
    for (const p of members) {
      if (p.state === 'gone' || p.state === 'stalled' || since(p) <= stallAfterMs) continue;
      if (!level && (p.lastStep ?? -1) >= lead) continue;
      p.state = 'stalled';
      log(`${p.peerId} stalled: no step reported for ${Math.round(since(p))} ms`);
      any = true;
    }
    return any;
  }

  /**
   * Measures coordinator -> peer bandwidth: a probe message, then probeBytes of uint8 on the same
   * ordered link; the peer acks once all of it arrived. bandwidth = bytes / (ack time - RTT/2).
   * Between runs only; a run that takes the peer aborts it. Failures are logged, never thrown.
   */
  async function probeBandwidth(p: PeerRecord): Promise<void> {
    if (probeBytes <= 0 || p.probe || disposed) return;
    const ctl = new AbortController();
    p.probe = ctl;
    const id = ++probeCounter;
    const signal = AbortSignal.any([ctl.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]);
    const acked = new Promise<Extract<ToCoordinator, { type: 'probeAck' }>>((resolve, reject) => {
      const onAbort = (): void => {
        probeAcks.delete(id);
        reject(asError(signal.reason));
      };
      probeAcks.set(id, (ack) => {
        probeAcks.delete(id);
        signal.removeEventListener('abort', onAbort);
        resolve(ack);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    acked.catch(() => {}); // awaited below; a send failure must not leave it unhandled
    try {
      probePayload ??= new Uint8Array(probeBytes);
      const t0 = now();
      await mesh.sendControl(p.peerId, { type: 'probe', id, bytes: probeBytes, tag: PROBE_TAG }, { signal });
      await mesh.sendTensor(
        p.peerId,
        {
          ...probeKey(id),
          dtype: 'uint8',
          shape: [probeBytes],
          data: probePayload,
        },
        { signal },
      );
      const ack = await acked;
      if (ack.error) throw Object.assign(new Error(ack.error.message), { name: ack.error.name });
      // Floor at 0.1 ms: a probe can beat the RTT estimate on an idle loopback link.
      const ms = Math.max(now() - t0 - (p.rttMs ?? 0) / 2, 0.1);
      p.bandwidthBytesPerSec = (ack.bytes / ms) * 1000;
      changed();
    } catch (e) {
      if (!ctl.signal.aborted) log(`bandwidth probe to ${p.peerId} failed: ${toWireError(e).message}`);
    } finally {
      if (p.probe === ctl) p.probe = null;
    }
  }

  // ---- runs ----
  function failRun(err: Error): void {
    if (!active) return;
    active.abort.abort(err);
  }

  /** Resolves when `cond()` holds after some message, or rejects on abort / timeout. */
  function waitFor(
    run: Pick<ProfileSession, 'abort' | 'waiters'>,
    phase: string,
    ms: number,
    cond: () => boolean,
  ): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const signal = AbortSignal.any([run.abort.signal, AbortSignal.timeout(ms)]);
      const waiter: Waiter = {
        match: () => cond(),
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        run.waiters.delete(waiter);
        reject(
          run.abort.signal.aborted ? asError(run.abort.signal.reason) : new PhaseTimeoutError(phase, ms),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      run.waiters.add(waiter);
    });
  }

  function idlePeers(): PeerRecord[] {
    return [...peers.values()].filter((p) => p.state === 'idle').sort((a, b) => a.joinedAt - b.joinedAt);
  }

  function waitForWorkers(n: number, ms: number, signal: AbortSignal): Promise<PeerRecord[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const idle = idlePeers();
        if (idle.length >= n) {
          cleanup();
          resolve(idle.slice(0, n));
        }
      };
      const s = AbortSignal.any([signal, AbortSignal.timeout(ms)]);
      const onAbort = (): void => {
        cleanup();
        reject(
          signal.aborted
            ? asError(signal.reason)
            : new PhaseTimeoutError(`waiting for ${n} workers (have ${idlePeers().length})`, ms),
        );
      };
      const cleanup = (): void => {
        idleWaiters.delete(check);
        s.removeEventListener('abort', onAbort);
      };
      idleWaiters.add(check);
      s.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  async function run(
    input: RunConfigInput,
    opts: { signal?: AbortSignal; waitMs?: number; faults?: readonly string[] } = {},
  ): Promise<RunReport> {
    if (disposed) throw new AbortError('coordinator disposed');
    if (active) throw new ConfigError('a run is already in progress');
    const config = parseRunConfig(input);
    // A run profiles the devices itself: a preview still in flight would only share their CPU.
    planning?.abort.abort(new AbortError('a run started'));
    const runId = ++runCounter;
    const abort = new AbortController();
    const onOuterAbort = (): void => abort.abort(opts.signal?.reason ?? new AbortError('run cancelled'));
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    runView = { ...emptyRun(runId), phase: 'preparing', config, totalSteps: config.steps };
    trained = null;
    traceSpans = [];
    traceDropped = 0;
    liveSpans = [];
    liveMaxStep = -1;
    changed();
    const placeholder: ActiveRun = {
      runId,
      config,
      ranks: [],
      abort,
      stepDone: new Map(),
      evals: new Map(),
      reference: null,
      ready: new Set(),
      profiles: new Map(),
      peaks: new Map(),
      errors: [],
      waiters: new Set(),
      paused: false,
      resume: null,
    };
    active = placeholder;
    const t0 = now();
    try {
      log(`waiting for ${config.workers} workers in room ${room}`);
      const chosen = await waitForWorkers(config.workers, opts.waitMs ?? 120_000, abort.signal);
      const r = placeholder;
      r.ranks = chosen.map((p) => p.peerId);
      for (const p of chosen) p.probe?.abort(new AbortError('a run took the peer'));
      const shape = runShape(config);
      const isPipe = config.strategy !== 'data';
      const P = shape.stages;
      const pipe = isPipe ? await planPipeline(r, chosen.slice(0, P)) : null;
      const shards = planShards(
        DATASETS[config.dataset].train,
        isPipe ? shape.replicas : config.workers,
        config.shards,
      );
      traceNames = {};
      chosen.forEach((p, rank) => {
        p.rank = rank;
        p.bytesSent = 0;
        p.framesRefused = 0;
        p.state = 'computing';
        if (pipe) {
          const stage = rank % P;
          const replica = Math.floor(rank / P);
          const range = pipe.plan.stages[stage]!;
          p.role = 'stage';
          p.stage = { stage, replica, first: range.first, end: range.end };
          p.shard = shards[replica]!;
          traceNames[p.peerId] =
            `rank ${rank}: stage ${stage}${shape.replicas > 1 ? ` replica ${replica}` : ''} (layers ${range.first}-${range.end - 1})`;
          send(p.peerId, {
            type: 'assign',
            runId,
            rank,
            peers: r.ranks,
            role: { kind: 'stage', stage, replica },
            shard: shards[replica]!,
            allShards: shards,
            config,
            stages: pipe.plan.stages.map(({ first, end }) => ({ first, end })),
          });
          return;
        }
        p.role = config.sync === 'ps' && rank === 0 ? 'worker+server' : 'worker';
        p.stage = null;
        p.shard = shards[rank]!;
        traceNames[p.peerId] = `rank ${rank}${p.role === 'worker+server' ? ' (server)' : ''}`;
        send(p.peerId, {
          type: 'assign',
          runId,
          rank,
          peers: r.ranks,
          role: { kind: p.role },
          ...(config.sync === 'ps' ? { serverRank: 0 } : {}),
          shard: shards[rank]!,
          allShards: shards,
          config,
        });
      });
      const bubbleTheory = (P - 1) / (config.microBatches + P - 1);
      if (pipe) {
        runView = {
          ...runView,
          pipeline: {
            stages: P,
            replicas: shape.replicas,
            microBatches: config.microBatches,
            schedule: config.schedule,
            recompute: config.recompute,
            assignments: chosen.map((p) => ({ peerId: p.peerId, ...p.stage! })),
            predictedStepMs: pipe.plan.predictedStepMs,
            bubbleTheory,
            bubbleMeasured: null,
            bubbles: [],
          },
        };
      }
      const replica0 = new Set(chosen.slice(0, P).map((p) => p.peerId));
      // The measured bubble: the median over the steps after the warm-up (over the warm-up steps
      // until there are any), kept as it goes: O(log n) a step however long the run.
      const bubbleMedian = new RunningMedian();
      const warmBubbles: number[] = [];
      changed();
      await waitFor(
        r,
        'workers loading data and connecting',
        readyTimeoutMs,
        () => r.ready.size === r.ranks.length,
      );
      log(`all ${config.workers} workers ready; training ${config.steps} steps (${config.sync})`);
      runView = { ...runView, phase: 'running', startedAt: now() };
      changed();
      const trainStart = now();
      let granted = -1;
      const grant = (upTo: number): void => {
        if (upTo <= granted) return;
        granted = upTo;
        for (const id of r.ranks) send(id, { type: 'step', runId, upTo });
      };
      let lastDoneAt = trainStart;
      const stepMs: number[] = [];
      // Bytes each rank had sent after the previous step (stepDone carries a running total).
      const sentBefore: number[] = r.ranks.map(() => 0);
      const malformedAt = opts.faults?.includes('malformed') ? Math.min(3, config.steps - 1) : -1;
      for (let step = 0; step < config.steps; step++) {
        if (r.paused) {
          runView = { ...runView, phase: 'paused' };
          changed();
          await new Promise<void>((resolve, reject) => {
            const onAbort = (): void => reject(asError(abort.signal.reason));
            r.resume = () => {
              abort.signal.removeEventListener('abort', onAbort);
              resolve();
            };
            abort.signal.addEventListener('abort', onAbort, { once: true });
          });
          runView = { ...runView, phase: 'running' };
          changed();
        }
        grant(Math.min(step + STEP_WINDOW - 1, config.steps - 1));
        if (step === malformedAt) await injectMalformedFrame(r.ranks[0]!);
        await waitFor(
          r,
          `step ${step}`,
          stepTimeoutMs,
          () => (r.stepDone.get(step)?.size ?? 0) === r.ranks.length,
        );
        const byRank = r.stepDone.get(step)!;
        const done = [...byRank.values()];
        const t = now();
        const wallMs = t - lastDoneAt;
        stepMs.push(wallMs);
        lastDoneAt = t;
        let stepBytes = 0;
        const computeMsByRank = r.ranks.map((_, rank) => {
          const d = byRank.get(rank);
          stepBytes += Math.max(0, (d?.bytesSent ?? 0) - sentBefore[rank]!);
          sentBefore[rank] = d?.bytesSent ?? sentBefore[rank]!;
          return d?.computeMs ?? 0;
        });
        const point: StepPoint = {
          step,
          loss: mean(done.flatMap((d) => (d.loss === undefined ? [] : [d.loss]))),
          tMs: t - trainStart,
          samplesPerSec: (shape.globalBatch * (step + 1)) / ((t - trainStart) / 1000),
          computeMs: mean(done.map((d) => d.computeMs)),
          commMs: mean(done.map((d) => d.commMs)),
          stepMs: wallMs,
          bytes: stepBytes,
          computeMsByRank,
        };
        runView.steps.push(point); // shared, append-only (RunView.steps)
        runView = { ...runView, step: step + 1, spans: liveSpans };
        const pv = runView.pipeline;
        if (pv) {
          const bubble = pipelineBubble(
            liveSpans.filter((sp) => sp.step === step && replica0.has(sp.peerId)),
            P,
          );
          if (bubble !== null) {
            if (step >= BUBBLE_WARMUP_STEPS) bubbleMedian.add(bubble);
            else warmBubbles.push(bubble);
            const kept = pv.bubbles.slice(Math.max(0, pv.bubbles.length - bubbleHistory + 1));
            runView = {
              ...runView,
              pipeline: {
                ...pv,
                bubbles: [...kept, { step, bubble }],
                bubbleMeasured: bubbleMedian.count > 0 ? bubbleMedian.median : median(warmBubbles),
              },
            };
          }
        }
        emit({
          type: 'progress',
          step: step + 1,
          totalSteps: config.steps,
          loss: point.loss,
          samplesPerSec: point.samplesPerSec,
        });
        const isLast = step === config.steps - 1;
        if (isLast) {
          // Rank 0 evaluates on its own schedule (every evalEvery steps and after the last one):
          // every worker holds identical parameters after a synchronous step. The parameters travel
          // ahead of the result on the same ordered link: when the result is here they are too (a
          // short grace covers a worker that never sends them).
          const got = mesh.recvTensor(r.ranks[0]!, finalParamsKey(runId, config.steps), {
            signal: AbortSignal.any([abort.signal, AbortSignal.timeout(stepTimeoutMs)]),
          });
          got.catch(() => {});
          await waitFor(r, 'evaluation', stepTimeoutMs, () => r.evals.has(step + 1));
          const msg = await Promise.race([got, sleep(1000, abort.signal).then(() => null)]).catch(() => null);
          if (msg) {
            const bytes = msg.data.slice(); // own, aligned copy
            trained = {
              runId,
              model: config.model,
              params: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4),
              testAccuracy: r.evals.get(step + 1)!.accuracy,
            };
          } else {
            log('rank 0 sent no trained parameters: the model cannot be exported');
          }
        }
        changed();
      }
      const trainMs = now() - trainStart;
      runView = { ...runView, phase: 'finishing' };
      changed();
      if (config.reference) {
        log('training the single-worker reference on the same global batches');
        send(r.ranks[0]!, { type: 'reference', runId });
        await waitFor(
          r,
          'reference run',
          Math.max(stepTimeoutMs, config.steps * 5_000),
          () => r.reference !== null,
        );
      }
      for (const id of r.ranks) send(id, { type: 'stop', runId, reason: 'finished' });
      const finalEval = r.evals.get(config.steps)!;
      const steps = runView.steps;
      const report: RunReport = {
        config,
        finalLoss: steps[steps.length - 1]?.loss ?? NaN,
        testAccuracy: finalEval.accuracy,
        wallMs: now() - t0,
        stepMsMedian: median(stepMs),
        computeMsMedian: median(steps.map((s) => s.computeMs)),
        commMsMedian: median(steps.map((s) => s.commMs)),
        samplesPerSec: (shape.globalBatch * config.steps) / (trainMs / 1000),
        bytesSent: chosen.reduce((a, p) => a + p.bytesSent, 0),
        workers: chosen.map((p, rank) => ({
          peerId: p.peerId,
          rank,
          role: p.role ?? 'worker',
          backend: p.device?.backend ?? 'unknown',
          gflops: p.device?.gflops ?? 0,
          bytesSent: p.bytesSent,
          framesRefused: p.framesRefused,
          ...(p.device?.adapter ? { adapter: p.device.adapter } : {}),
        })),
        loss: steps.map((s) => ({ step: s.step, loss: s.loss })),
        evals: runView.evals.map((e) => ({ step: e.step, accuracy: e.accuracy })),
        ...(r.reference
          ? {
              reference: {
                maxAbsDiff: r.reference.maxAbsDiff,
                maxRelDiff: r.reference.maxRelDiff,
                referenceLoss: r.reference.referenceLoss,
              },
            }
          : {}),
        ...(pipe && runView.pipeline
          ? { pipeline: pipelineReport(r, runView.pipeline, pipe, chosen.slice(0, P)) }
          : {}),
        errors: r.errors,
      };
      runView = { ...runView, phase: 'done' };
      emit({ type: 'trace', trace: buildTrace() });
      if (trained && trained.runId === runId)
        emit({ type: 'model', model: trained.model, paramsBase64: toBase64(trained.params) });
      emit({ type: 'done', report });
      return report;
    } catch (e) {
      const err = asError(e);
      const stopped = err.name === 'AbortError';
      runView = { ...runView, phase: stopped ? 'stopped' : 'failed', error: toWireError(err) };
      for (const id of active?.ranks ?? [])
        send(id, { type: 'stop', runId, reason: `${err.name}: ${err.message}` });
      emit({ type: 'trace', trace: buildTrace() });
      emit({ type: 'error', error: toWireError(err) });
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      const members = (active?.ranks ?? []).flatMap((id) => peers.get(id) ?? []);
      for (const p of members) {
        p.lastReportAt = null;
        if (p.state !== 'gone') p.state = 'idle';
      }
      active = null;
      changed();
      // Between runs: measure the links again (the run may have changed what they carry).
      for (const p of members) if (p.state === 'idle' && !disposed) void probeBandwidth(p);
    }
  }

  /**
   * Profiles the layers on each device of replica 0 (one at a time: profiles taken at once would
   * share the CPU) and turns the profiles into the planner's inputs. Shared by run() and plan().
   */
  async function profilePipeline(
    s: ProfileSession,
    config: RunConfig,
    devices: readonly PeerRecord[],
  ): Promise<PlanInputs> {
    log(`profiling layers on ${devices.length} devices`);
    for (const d of devices) {
      send(d.peerId, { type: 'profile', runId: s.runId, config });
      await waitFor(s, `profiling layers on ${d.peerId}`, readyTimeoutMs, () => s.profiles.has(d.peerId));
    }
    const profiles = devices.map((d) => s.profiles.get(d.peerId)!);
    const totals = profiles.map((ls) => ls.reduce((a, l) => a + l.costMs, 0));
    const fastest = totals.indexOf(Math.min(...totals));
    const layers = profiles[fastest]!;
    if (profiles.some((ls) => ls.length !== layers.length)) {
      throw new ConfigError('invalid pipeline', ['workers disagree on the number of layers']);
    }
    // A device's speed is what its own profile says: micro-batches per second through the whole model.
    const stageDevices = devices.map((d, i) => ({
      id: d.peerId,
      gflops: 1000 / Math.max(totals[i]!, 1e-3),
      memoryBytes: ((d.device?.deviceMemoryGiB ?? DEFAULT_DEVICE_GIB) * 2 ** 30) / 4,
    }));
    const options = {
      microBatches: config.microBatches,
      referenceGflops: stageDevices[fastest]!.gflops,
      bytesPerMs: PLANNER_LINK_BYTES_PER_MS,
    };
    return { layers, devices: stageDevices, options };
  }

  /**
   * Cuts the model for a run: the planner for 'auto', else the user's ranges checked against the
   * devices' memory. Throws ConfigError or PlanError with the reason.
   */
  async function planPipeline(
    r: ActiveRun,
    devices: PeerRecord[],
  ): Promise<{ plan: StagePlan; layers: LayerCost[] }> {
    const { config } = r;
    const { layers, devices: stageDevices, options } = await profilePipeline(r, config, devices);
    const plan =
      config.partition === 'auto'
        ? planStages(layers, stageDevices, options)
        : evaluatePartition(
            layers,
            stageDevices,
            parsePartition(config.partition, layers.length, devices.length),
            options,
          );
    log(
      `stages: ${plan.stages.map((st, i) => `${i}: layers ${st.first}-${st.end - 1}`).join(', ')}` +
        ` (predicted ${plan.predictedStepMs.toFixed(1)} ms per step)`,
    );
    return { plan, layers };
  }

  async function plan(
    input: RunConfigInput,
    opts: { signal?: AbortSignal; waitMs?: number } = {},
  ): Promise<PlanPreview> {
    if (disposed) throw new AbortError('coordinator disposed');
    if (active) throw new ConfigError('cannot plan now', [`run ${active.runId} is in progress`]);
    const config = parseRunConfig(input);
    if (config.strategy === 'data')
      throw new ConfigError('cannot plan now', ['strategy: data parallelism has no stages to plan']);
    const P = runShape(config).stages;
    planning?.abort.abort(new AbortError('superseded by a newer plan request'));
    const abort = new AbortController();
    const onOuterAbort = (): void => abort.abort(opts.signal?.reason ?? new AbortError('plan cancelled'));
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (opts.signal?.aborted) onOuterAbort();
    const devices = new Set<string>();
    const s = { runId: --planCounter, abort, waiters: new Set<Waiter>(), profiles: new Map(), devices };
    planning = s;
    try {
      if (abort.signal.aborted) throw asError(abort.signal.reason);
      const waitMs = opts.waitMs ?? 0;
      const chosen = waitMs > 0 ? await waitForWorkers(P, waitMs, abort.signal) : idlePeers().slice(0, P);
      if (chosen.length < P)
        throw new ConfigError('cannot plan now', [`${P} stages need ${P} idle peers; ${chosen.length} idle`]);
      for (const d of chosen) devices.add(d.peerId);
      const inputs = await profilePipeline(s, config, chosen);
      if (abort.signal.aborted) throw asError(abort.signal.reason);
      const proposal = planStages(inputs.layers, inputs.devices, inputs.options);
      return {
        layers: inputs.layers,
        devices: inputs.devices.map((d) => ({ peerId: d.id, speed: d.gflops, memoryBytes: d.memoryBytes })),
        options: inputs.options,
        plan: proposal,
      };
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      for (const w of s.waiters) s.waiters.delete(w);
      if (planning === s) planning = null;
    }
  }

  function pipelineReport(
    r: ActiveRun,
    pv: PipelineView,
    pipe: { plan: StagePlan; layers: LayerCost[] },
    replica0: PeerRecord[],
  ): PipelineReport {
    return {
      schedule: pv.schedule,
      stages: pv.stages,
      replicas: pv.replicas,
      microBatches: pv.microBatches,
      recompute: pv.recompute,
      bubbleMeasured: pv.bubbleMeasured ?? NaN,
      bubbleTheory: pv.bubbleTheory,
      predictedStepMs: pv.predictedStepMs,
      perStage: pipe.plan.stages.map((st, i) => {
        const layers = pipe.layers.slice(st.first, st.end);
        const peak = r.peaks.get(i) ?? { withRe: 0, without: 0 };
        return {
          stage: i,
          layers: [st.first, st.end - 1] as [number, number],
          layerNames: layers.map((l) => l.name),
          parameterBytes: layers.reduce((a, l) => a + l.paramBytes, 0),
          peakActivationBytes: peak.withRe,
          peakActivationBytesNoRecompute: peak.without,
          peerId: replica0[i]!.peerId,
        };
      }),
    };
  }

  function buildTrace(): ChromeTrace {
    const over = Math.max(0, traceSpans.length - traceCapacity);
    const t = toChromeTrace(over > 0 ? traceSpans.slice(over) : traceSpans, { peerNames: traceNames });
    const dropped = traceDropped + over;
    if (dropped > 0) {
      t.traceEvents.push({ name: 'dropped_spans', ph: 'M', pid: 0, tid: 0, args: { count: dropped } });
    }
    return t;
  }

  /** Fault injection: a frame with a valid magic and an impossible length, straight onto the link. */
  async function injectMalformedFrame(peerId: string): Promise<void> {
    const bytes = new Uint8Array(64);
    const dv = new DataView(bytes.buffer);
    dv.setUint16(0, 0x5450, true); // magic
    dv.setUint8(2, PROTOCOL_VERSION);
    dv.setUint8(3, 2); // tensor
    dv.setUint8(4, 1); // float32
    dv.setUint8(5, 1); // rank 1
    dv.setUint32(16, 1, true); // chunkCount
    dv.setUint32(20, 0xffffff00, true); // totalBytes: absurd
    log(`fault injection: sending a malformed frame to ${peerId}`);
    await mesh.sendRaw(peerId, bytes);
  }

  return {
    room,
    view,
    trace: buildTrace,
    trainedModel: () => trained,
    subscribe(listener) {
      viewListeners.add(listener);
      return () => viewListeners.delete(listener);
    },
    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    run,
    plan,
    pause() {
      if (active) active.paused = true;
    },
    resume() {
      if (!active) return;
      active.paused = false;
      const r = active.resume;
      active.resume = null;
      r?.();
    },
    stop(reason = 'stopped by user') {
      active?.abort.abort(new AbortError(reason));
    },
    async dispose() {
      disposed = true;
      active?.abort.abort(new AbortError('coordinator disposed'));
      for (const p of peers.values()) p.probe?.abort(new AbortError('coordinator disposed'));
      planning?.abort.abort(new AbortError('coordinator disposed'));
      timers.clearInterval(pingTimer);
      offControl();
      offPeer();
      offError();
      viewListeners.clear();
      eventListeners.clear();
      await mesh.close();
    },
  };
}

const TO_COORDINATOR_TYPES = new Set<string>([
  'hello',
  'ready',
  'profileResult',
  'stepDone',
  'evalResult',
  'referenceResult',
  'frameRefused',
  'error',
  'pong',
  'probeAck',
  'leave',
] satisfies ToCoordinator['type'][]);

function isToCoordinator(msg: ControlMessage): msg is ToCoordinator {
  return TO_COORDINATOR_TYPES.has(msg.type);
}

/** Spans of the comm lane that wait on a peer rather than move data. */
const WAIT_KINDS: ReadonlySet<WireSpan['kind']> = new Set(['recv', 'wait']);

/**
 * What a step kept a peer busy with, from its spans (wall time per kind of work, overlaps counted
 * once): computing (the compute lane), sending (the comm lane moving data: sends, all-reduce
 * phases) or waiting (receives and waits on a peer: a pipeline stage idle until its neighbour's
 * activations or gradients arrive). The largest wins; ties go to computing. Without spans, the
 * step's computeMs / commMs decide between computing and sending.
 */
export function activityOf(msg: StepDoneMsg): 'computing' | 'sending' | 'waiting' {
  const spans = msg.spans ?? [];
  if (spans.length === 0) return msg.commMs > msg.computeMs ? 'sending' : 'computing';
  const busy = (keep: (s: WireSpan) => boolean): number => {
    const iv = spans
      .filter(keep)
      .map((s) => [s.startMs, s.startMs + s.durMs] as const)
      .sort((a, b) => a[0] - b[0]);
    let total = 0;
    let end = -Infinity;
    for (const [a, b] of iv) {
      if (b <= end) continue;
      total += b - Math.max(a, end);
      end = b;
    }
    return total;
  };
  const computing = busy((s) => s.lane === 'compute');
  const sending = busy((s) => s.lane === 'comm' && !WAIT_KINDS.has(s.kind));
  const waiting = busy((s) => s.lane === 'comm' && WAIT_KINDS.has(s.kind));
  if (computing >= sending && computing >= waiting) return 'computing';
  return sending >= waiting ? 'sending' : 'waiting';
}

/** Bytes of a typed array as base64 (btoa exists in browsers and Node). */
export function toBase64(a: Float32Array): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function asError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new AbortError(typeof e === 'string' ? e : 'aborted');
}

function mean(xs: number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
