import { AbortError } from '@peertrain/base';
import {
  PHASE_TIMEOUTS,
  PROTOCOL_VERSION,
  PeerLostError,
  PhaseTimeoutError,
  ProtocolError,
  toWireError,
} from '@peertrain/protocol';
import type { ToCoordinator } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type { Compute } from './compute.ts';
import { handleControl } from './control.ts';
import type { JoinWait } from './control.ts';
import type { WorkerCore } from './core.ts';
import { DroppedError, Heartbeat, platformTimers } from './heartbeat.ts';
import type { WorkerTimers } from './heartbeat.ts';
import { asError } from '@peertrain/base';
import { dialCoordinator } from './links.ts';
import { awaitCoordinator, coordinatorGone } from './coordinator-return.ts';
import type { WorkerRuntime, WorkerStatus } from './types.ts';

export { JOIN_RETRY_MS } from './links.ts';

export interface WorkerRuntimeInit {
  mesh: Mesh;
  room: string;
  coordinatorId: string;
  /** Builds the compute engine (probing backends); called once, before joining. */
  compute: (opts: { signal: AbortSignal }) => Promise<Compute>;
  now?: () => number;
  /** One join attempt's limit (dial, then hello until welcome); the first join then tries again. */
  joinTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** How long to wait for a coordinator whose link closed (PHASE_TIMEOUTS.coordinatorReturn). */
  coordinatorReturnMs?: number;
  /** The heartbeat's interval timer (default: the platform's). */
  timers?: WorkerTimers;
  signal?: AbortSignal;
}

function initialStatus(peerId: string, room: string): WorkerStatus {
  return {
    phase: 'probing',
    peerId,
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
    links: null,
    lastError: null,
    memory: null,
  };
}

/**
 * A worker's life: probe the engine, join the room, then serve the coordinator's control messages
 * (control.ts); each assignment is driven by run-loop.ts with the method it names (methods/).
 */
export function createWorkerRuntime(init: WorkerRuntimeInit): WorkerRuntime {
  const { mesh, room, coordinatorId } = init;
  const lifetime = new AbortController();
  const onOuterAbort = (): void => lifetime.abort(init.signal?.reason ?? new AbortError('worker stopped'));
  init.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const listeners = new Set<(s: WorkerStatus) => void>();
  let status = initialStatus(mesh.localId, room);
  const core: WorkerCore = {
    mesh,
    coordinatorId,
    now: init.now ?? (() => performance.now()),
    lifetime: lifetime.signal,
    connectTimeoutMs: init.connectTimeoutMs ?? PHASE_TIMEOUTS.connect.ms,
    compute: null,
    current: null,
    status: () => status,
    update(patch) {
      const t = mesh.stats().total;
      status = { ...status, ...patch, bytesSent: t.bytesSent, bytesReceived: t.bytesReceived };
      for (const l of listeners) l(status);
    },
    tell(msg) {
      mesh.sendControl(coordinatorId, msg).catch(() => {
        // The coordinator link is gone; onPeer('close') reports it.
      });
    },
  };
  const joinTimeoutMs = init.joinTimeoutMs ?? PHASE_TIMEOUTS.join.ms;
  const heartbeat = new Heartbeat(core, init.timers ?? platformTimers);
  const returnMs = init.coordinatorReturnMs ?? PHASE_TIMEOUTS.coordinatorReturn.ms;
  const join: JoinWait = {
    welcomed: null,
    returning: false,
    rejoin: (reason) =>
      void rejoin(core, join, heartbeat, room, new DroppedError(reason), joinTimeoutMs).catch(failed),
    coordinatorGone: () =>
      void rejoin(core, join, heartbeat, room, coordinatorGone(coordinatorId), joinTimeoutMs, returnMs).catch(
        failed,
      ),
  };
  const offs = watchMesh(core, join);
  const failed = (e: unknown): void => {
    const err = asError(e);
    if (!lifetime.signal.aborted) core.update({ phase: 'error', lastError: toWireError(err) });
  };

  main(core, join, room, init.compute, joinTimeoutMs)
    .then(() => heartbeat.start())
    .catch(failed);

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
      lifetime.abort(new AbortError(reason)); // stops the heartbeat too
      core.current?.abort.abort(new AbortError(reason));
      init.signal?.removeEventListener('abort', onOuterAbort);
      for (const off of offs) off();
      core.compute?.dispose();
      await mesh.close();
      core.update({ phase: 'left' });
      listeners.clear();
    },
  };
}

/** Subscribes to the mesh's errors, peers and control messages; returns the unsubscribes. */
function watchMesh(core: WorkerCore, join: JoinWait): (() => void)[] {
  const { mesh, coordinatorId } = core;
  const offError = mesh.onError((from, err) => {
    if (err instanceof ProtocolError) {
      // A malformed frame: refused and reported, training goes on.
      core.update({ framesRefused: core.status().framesRefused + 1, lastError: toWireError(err) });
      core.tell({ type: 'frameRefused', from, error: toWireError(err) });
    }
  });
  const offPeer = mesh.onPeer((peerId, event) => {
    if (event !== 'close') return;
    const run = core.current;
    if (peerId === coordinatorId) {
      join.coordinatorGone(); // the dashboard tab reloading: wait for it (coordinator-return.ts)
    } else if (run?.assign.peers.includes(peerId) && !run.assign.config.elastic) {
      // Elastic runs go on: the coordinator ends the epoch and the survivors redo the step.
      run.abort.abort(new PeerLostError(peerId));
    }
  });
  const offControl = mesh.onControl((from, msg) => {
    if (from !== coordinatorId) return; // peers talk tensors; control comes from the coordinator only
    handleControl(core, join, msg);
  });
  return [offControl, offError, offPeer];
}

/**
 * Probes the engine, links to the coordinator and joins the room (hello, then welcome or reject).
 * A volunteer may open the link before the dashboard is up, or join a busy one: an attempt that
 * finds no coordinator, or no welcome, within `timeoutMs` is shown (lastError) and the next one
 * starts; only a reject (another room, another protocol) or leaving ends the joining.
 */
async function main(
  core: WorkerCore,
  join: JoinWait,
  room: string,
  makeCompute: WorkerRuntimeInit['compute'],
  timeoutMs: number,
): Promise<void> {
  const signal = core.lifetime;
  core.update({ phase: 'probing' });
  const compute = await makeCompute({ signal });
  core.compute = compute;
  core.update({ phase: 'joining', device: compute.device });
  for (let failed = false; ; failed = true) {
    try {
      await dialCoordinator(core.mesh, core.coordinatorId, signal, timeoutMs);
      await sayHello(core, join, room, timeoutMs);
      if (failed) core.update({ lastError: null }); // in: what kept it out is over
      return;
    } catch (err) {
      signal.throwIfAborted();
      if (!(err instanceof PeerLostError || err instanceof PhaseTimeoutError)) throw err;
      core.update({ phase: 'joining', lastError: toWireError(err) }); // and the next attempt
    }
  }
}

/** Hello, then welcome (the worker is idle) or reject / PhaseTimeoutError('joining the room'). */
async function sayHello(core: WorkerCore, join: JoinWait, room: string, timeoutMs: number): Promise<void> {
  const signal = core.lifetime;
  const welcome = new Promise<true | Error>((resolve) => (join.welcomed = resolve));
  const hello: ToCoordinator = {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    room,
    device: core.compute!.device,
  };
  await core.mesh.sendControl(core.coordinatorId, hello, { signal });
  const timer = AbortSignal.timeout(timeoutMs);
  const answer = await Promise.race([
    welcome,
    new Promise<Error>((resolve) =>
      timer.addEventListener(
        'abort',
        () => resolve(new PhaseTimeoutError(PHASE_TIMEOUTS.join.phase, timeoutMs)),
        { once: true },
      ),
    ),
  ]);
  join.welcomed = null;
  if (answer !== true) throw answer;
  core.update({ phase: 'idle' });
}

/**
 * Says hello again after the run in flight is aborted with `cause`. Two ways here:
 * - The coordinator dropped this worker (silent past the heartbeat timeout: a frozen tab) and heard
 *   from it again (`cause` DroppedError). An elastic run still in progress readmits it at its next
 *   step boundary; otherwise it stays idle.
 * - The coordinator's link closed (the dashboard tab reloaded; `returnMs` set): the worker first
 *   dials the coordinator's id until it is back (coordinator-return.ts), then says hello; the
 *   reloaded dashboard resumes the run from its checkpoint.
 * The run state goes (its loop disposes the session on the way out); heartbeats pause until the
 * new welcome. Once at a time: a second call while rejoining is ignored.
 */
async function rejoin(
  core: WorkerCore,
  join: JoinWait,
  heartbeat: Heartbeat,
  room: string,
  cause: Error,
  timeoutMs: number,
  returnMs?: number,
): Promise<void> {
  if (join.welcomed !== null || join.returning || core.compute === null || core.lifetime.aborted) return;
  heartbeat.stop();
  const run = core.current;
  core.current = null;
  run?.abort.abort(cause);
  // What the run showed goes (the page shows no rank until it is readmitted).
  const { runId, rank, worldSize, role, shard, stage } = initialStatus(core.mesh.localId, room);
  const lastError = returnMs === undefined ? {} : { lastError: toWireError(cause) };
  core.update({ phase: 'joining', runId, rank, worldSize, role, shard, stage, ...lastError });
  join.returning = true;
  try {
    if (returnMs !== undefined)
      await awaitCoordinator(core.mesh, core.coordinatorId, { signal: core.lifetime, timeoutMs: returnMs });
    await sayHello(core, join, room, timeoutMs);
  } finally {
    join.returning = false;
  }
  heartbeat.start();
}
