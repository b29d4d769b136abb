import { AbortError } from '@peertrain/base';
import { PHASE_TIMEOUTS, ProtocolError, coordinatorPeerId } from '@peertrain/protocol';
import type { ControlMessage, ToCoordinator } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import { RunDriver } from './driver.ts';
import { Heartbeats } from './heartbeats.ts';
import { createHub } from './hub.ts';
import type { Hub } from './hub.ts';
import { BUBBLE_HISTORY, DEFAULT_TRACE_CAPACITY, SpanIntake, takePong } from './intake.ts';
import { Membership } from './membership.ts';
import { DEFAULT_PROBE_BYTES, Planning } from './planning.ts';
import type { Coordinator, CoordinatorView } from './types.ts';

/*
 * The coordinator, put together from its parts: membership (admission, states, epochs), planning
 * (probes, profiles, stage plans), the run driver (assignment, barrier, report), telemetry intake
 * (spans, clocks, bubble, trace) and the training methods' coordinator sides (methods/). This file
 * only routes messages between them and the mesh.
 */

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
  /** Clock-sync ping period, and how often the heartbeat watchdog looks for silent members. */
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

/** Longer than an evaluation on a slow backend takes (rank 0 evaluates between steps). */
const DEFAULT_STALL_AFTER_MS = 15_000;

interface Parts {
  hub: Hub;
  membership: Membership;
  planning: Planning;
  driver: RunDriver;
  heartbeats: Heartbeats;
  isDisposed(): boolean;
}

export function createCoordinator(init: CoordinatorInit): Coordinator {
  const { mesh, room } = init;
  const selfId = coordinatorPeerId(room);
  const timers: Timers = init.timers ?? {
    setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
    clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
  };
  let disposed = false;
  const view = (): CoordinatorView => ({
    room,
    coordinatorId: selfId,
    peers: membership.peerViews(),
    run: { ...driver.runView },
  });
  const hub = createHub(mesh, init.now ?? (() => performance.now()), view);
  const membership = new Membership(room, hub, init.stallAfterMs ?? DEFAULT_STALL_AFTER_MS);
  const spans = new SpanIntake(init.traceCapacity ?? DEFAULT_TRACE_CAPACITY);
  const isDisposed = (): boolean => disposed;
  const planning: Planning = new Planning({
    hub,
    membership,
    probeBytes: init.probeBytes ?? DEFAULT_PROBE_BYTES,
    readyTimeoutMs: init.readyTimeoutMs ?? PHASE_TIMEOUTS.ready.ms,
    activeRunId: (): number | null => driver.activeRunId(),
    disposed: isDisposed,
  });
  const driver: RunDriver = new RunDriver({
    hub,
    room,
    membership,
    planning,
    spans,
    readyTimeoutMs: init.readyTimeoutMs ?? PHASE_TIMEOUTS.ready.ms,
    stepTimeoutMs: init.stepTimeoutMs ?? PHASE_TIMEOUTS.step.ms,
    bubbleHistory: Math.max(1, init.bubbleHistory ?? BUBBLE_HISTORY),
    disposed: isDisposed,
  });
  const heartbeats = new Heartbeats(hub, membership, driver);
  const parts: Parts = { hub, membership, planning, driver, heartbeats, isDisposed };
  const offs = [
    mesh.onControl((from, msg: ControlMessage) => {
      if (isToCoordinator(msg)) route(parts, from, msg);
    }),
    mesh.onPeer((peerId, event) => {
      if (event === 'open') membership.linkOpened(peerId);
      else membership.linkClosed(peerId);
    }),
    mesh.onError((from, err) => {
      if (err instanceof ProtocolError) hub.log(`refused a frame from ${from}: ${err.message}`);
    }),
  ];
  const pingTimer = startPings(parts, timers, init.pingEveryMs ?? 1000);
  const stopWatchdog = heartbeats.start(timers, init.pingEveryMs ?? 1000);
  return {
    room,
    view,
    trace: () => spans.trace(),
    trainedModel: () => driver.trained,
    subscribe: (listener) => hub.subscribe(listener),
    onEvent: (listener) => hub.onEvent(listener),
    run: (input, opts) => driver.run(input, opts),
    plan: (input, opts) => planning.plan(input, opts),
    pause: () => driver.pause(),
    resume: () => driver.resume(),
    stop: (reason = 'stopped by user') => driver.fail(new AbortError(reason)),
    async dispose() {
      disposed = true;
      driver.fail(new AbortError('coordinator disposed'));
      for (const p of membership.peers.values()) p.probe?.abort(new AbortError('coordinator disposed'));
      planning.abortPreview(new AbortError('coordinator disposed'));
      timers.clearInterval(pingTimer);
      stopWatchdog();
      for (const off of offs) off();
      hub.clear();
      await mesh.close();
    },
  };
}

/** Clock sync: a ping to every admitted peer each period, then the stall check. */
function startPings({ hub, membership, driver }: Parts, timers: Timers, everyMs: number): unknown {
  let pingId = 0;
  return timers.setInterval(() => {
    const t0 = hub.now();
    for (const p of membership.peers.values()) {
      if (p.state !== 'gone' && p.state !== 'joining') hub.send(p.peerId, { type: 'ping', id: ++pingId, t0 });
    }
    if (membership.checkStalls(t0, driver.ranks(), driver.runView)) hub.changed();
  }, everyMs);
}

/** Routes one message from a peer to the part that owns it. */
function route(parts: Parts, from: string, msg: ToCoordinator): void {
  const { hub, membership, planning, driver, heartbeats } = parts;
  if (!heartbeats.heard(from, msg)) return; // a dropped peer's: void until it says hello again
  if (msg.type === 'hello') {
    membership.hello(from, msg);
    return;
  }
  const p = membership.admitted(from);
  if (!p) return; // not admitted: ignore everything but hello
  if (planning.onPreviewMessage(from, msg)) return;
  switch (msg.type) {
    case 'pong':
      takePong(p, msg, hub.now());
      // The first round trip is known: measure the link once (RTT/2 is taken off the probe's time).
      if (p.bandwidthBytesPerSec === null && p.state === 'idle') void planning.probeBandwidth(p);
      hub.changed();
      return;
    case 'probeAck':
      planning.onProbeAck(msg);
      return;
    case 'frameRefused':
      p.framesRefused++;
      driver.onFrameRefused(msg.error);
      hub.log(`${from} refused a malformed frame from ${msg.from}: ${msg.error.name}: ${msg.error.message}`);
      hub.changed();
      return;
    case 'leave':
      membership.left(from, msg.reason);
      return;
    case 'heartbeat':
      return; // heard() took it
    case 'error':
      driver.onWorkerError(from, msg);
      return;
    case 'ready':
    case 'profileResult':
    case 'stepDone':
    case 'evalResult':
    case 'referenceResult':
    case 'epochAck':
    case 'links':
      driver.onRunMessage(from, p, msg);
      return;
    case 'stepsDone': // held reports, sent together: each as if it came alone, in order
      for (const report of msg.reports) driver.onRunMessage(from, p, report);
      return;
    default: {
      const _exhaustive: never = msg;
      return _exhaustive;
    }
  }
}

const TO_COORDINATOR_TYPES = new Set<string>([
  'hello',
  'ready',
  'profileResult',
  'stepDone',
  'stepsDone',
  'evalResult',
  'referenceResult',
  'frameRefused',
  'error',
  'pong',
  'probeAck',
  'leave',
  'epochAck',
  'links',
  'heartbeat',
] satisfies ToCoordinator['type'][]);

function isToCoordinator(msg: ControlMessage): msg is ToCoordinator {
  return TO_COORDINATOR_TYPES.has(msg.type);
}
