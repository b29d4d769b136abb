import { AbortError, deadline } from '@peertrain/base';
// What the worker does with each control message from the coordinator.
import { toWireError } from '@peertrain/protocol';
import type { ControlMessage } from '@peertrain/protocol';
import { memoryReport, poke } from './core.ts';
import type { RunState, WorkerCore } from './core.ts';
import { asError } from '@peertrain/base';
import { onEpoch } from './elastic.ts';
import { startRun } from './run-loop.ts';

/** How long a bandwidth probe's payload may take to arrive after its announcement. */
const PROBE_TIMEOUT_MS = 10_000;

/** The join handshake's pending answer (set while main() waits for welcome or reject). */
export interface JoinWait {
  welcomed: ((ok: true | Error) => void) | null;
  /** The coordinator dropped this worker: abort the run, say hello again (runtime.ts). */
  rejoin: (reason: string) => void;
  /** The coordinator's link closed: abort the run, wait for it to come back, say hello again. */
  coordinatorGone: () => void;
  /** True while one of the two above is under way (a second call is ignored). */
  returning: boolean;
}

/** Handles one control message; the coordinator's id was checked by the caller. */
export function handleControl(core: WorkerCore, join: JoinWait, msg: ControlMessage): void {
  switch (msg.type) {
    case 'welcome':
      join.welcomed?.(true);
      return;
    case 'reject':
      join.welcomed?.(new Error(`rejected by coordinator: ${msg.reason}`));
      return;
    case 'ping': {
      const report = memoryReport(core.compute?.memory?.() ?? null, core.current);
      core.tell({ type: 'pong', id: msg.id, t0: msg.t0, tWorker: core.now(), ...report });
      if (report.memory) core.update({ memory: report.memory });
      return;
    }
    case 'probe': {
      // The payload follows on the same ordered link; ack once it is all here (the coordinator times it).
      const key = { runId: 0, step: msg.id, microBatch: null, tag: msg.tag };
      const signal = deadline(core.lifetime, PROBE_TIMEOUT_MS);
      core.mesh.recvTensor(core.coordinatorId, key, { signal }).then(
        (t) => core.tell({ type: 'probeAck', id: msg.id, bytes: t.data.byteLength }),
        (e: unknown) => core.tell({ type: 'probeAck', id: msg.id, bytes: 0, error: toWireError(asError(e)) }),
      );
      return;
    }
    case 'assign':
      startRun(core, msg);
      return;
    case 'epoch':
      onEpoch(core, msg);
      return;
    case 'dropped':
      join.rejoin(msg.reason);
      return;
    case 'profile': {
      const c = core.compute;
      if (!c) return;
      c.profile(msg.config, { signal: core.lifetime }).then(
        (layers) => core.tell({ type: 'profileResult', runId: msg.runId, layers }),
        (e: unknown) => core.tell({ type: 'error', runId: msg.runId, error: toWireError(asError(e)) }),
      );
      return;
    }
    default:
      runCommand(core.current, msg);
  }
}

/** Commands for the current run: queued on it, then its loop is woken. */
function runCommand(run: RunState | null, msg: ControlMessage): void {
  if (!run || !('runId' in msg) || run.assign.runId !== msg.runId) return;
  switch (msg.type) {
    case 'step':
      run.grantedUpTo = Math.max(run.grantedUpTo, msg.upTo);
      poke(run);
      return;
    case 'evaluate':
      run.pendingEvals.push(msg.step);
      poke(run);
      return;
    case 'reference':
      run.pendingReference = true;
      poke(run);
      return;
    case 'slow':
      run.slowFactor = msg.factor;
      return;
    case 'stop':
      run.abort.abort(new AbortError(`stopped: ${msg.reason}`));
      return;
    default:
      return; // other directions' messages are not for a worker
  }
}
