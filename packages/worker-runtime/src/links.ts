import { deadline, sleep } from '@peertrain/base';
import { PHASE_TIMEOUTS, PeerLostError, PhaseTimeoutError } from '@peertrain/protocol';
import type { LinkCounts } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import { asError } from '@peertrain/base';
import type { MethodLinks } from './methods/index.ts';

/** Pause between dials while the coordinator's id is unknown to the signaling server. */
export const JOIN_RETRY_MS = 1_000;

/** Waits until `peerId` has an open link (it dials us, or we dial it). */
export function waitConnected(mesh: Mesh, peerId: string, signal: AbortSignal): Promise<void> {
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

/** Dials `links.dial` and waits for every link in `links.need`; PhaseTimeoutError(phase) after `timeoutMs`. */
export async function openLinks(
  mesh: Mesh,
  links: MethodLinks,
  timeoutMs: number,
  signal: AbortSignal,
  phase: string = PHASE_TIMEOUTS.connect.phase,
): Promise<void> {
  const s = deadline(signal, timeoutMs);
  try {
    await Promise.all([...new Set(links.dial)].map((p) => mesh.connect(p, { signal: s })));
    await Promise.all(links.need.map((p) => waitConnected(mesh, p, s)));
  } catch (e) {
    if (signal.aborted) throw asError(signal.reason);
    if (s.aborted) throw new PhaseTimeoutError(phase, timeoutMs);
    throw e;
  }
}

/**
 * How long the first dial to the coordinator may go unanswered before it is made again; each next
 * try waits twice as long as the one before, up to COORDINATOR_TRY_MAX_MS. An offer can be lost:
 * a worker whose coordinator's link just closed dials at once, and the signaling server may still
 * hand the offer to the old page's socket, which is going away (seen: every such dial waited the
 * transport's whole 45 s handshake timeout; the next one opened in 30 ms).
 */
export const COORDINATOR_FIRST_TRY_MS = 5_000;
export const COORDINATOR_TRY_MAX_MS = 40_000;

/**
 * Links to the coordinator. Its id may not be on the signaling server yet (the worker link was
 * opened before the dashboard, or the dashboard is reloading): dial again every JOIN_RETRY_MS
 * until the join timeout, then fail with the last PeerLostError (or, when the timeout ends a dial in
 * flight, one saying no coordinator answered). A dial that has no answer within its try
 * (COORDINATOR_FIRST_TRY_MS, doubling) or whose handshake stalled (PhaseTimeoutError) is made again
 * at once. Other errors (the worker's own mesh closed) fail at once.
 */
export async function dialCoordinator(
  mesh: Mesh,
  coordinatorId: string,
  signal: AbortSignal,
  timeoutMs: number,
  firstTryMs: number = COORDINATOR_FIRST_TRY_MS,
): Promise<void> {
  const until = deadline(signal, timeoutMs);
  // The join timeout passing in a dial (a PeerJS offer nobody answered) says so, naming the coordinator.
  const noAnswer = (): PeerLostError =>
    new PeerLostError(coordinatorId, `no coordinator answered within ${timeoutMs / 1000} s`);
  for (let tryMs = firstTryMs; ; tryMs = Math.min(2 * tryMs, COORDINATOR_TRY_MAX_MS)) {
    const attempt = deadline(until, tryMs);
    try {
      await mesh.connect(coordinatorId, { signal: attempt });
      return;
    } catch (e) {
      signal.throwIfAborted();
      const err = until.aborted && !(e instanceof PeerLostError) ? noAnswer() : e;
      if (until.aborted) throw err;
      if (attempt.aborted) continue; // no answer within this try: dial again
      if (!(err instanceof PeerLostError || err instanceof PhaseTimeoutError)) throw err;
      await sleep(JOIN_RETRY_MS, until).catch(() => {
        signal.throwIfAborted();
        throw err; // the join timeout passed while waiting: the coordinator never came
      });
    }
  }
}

/** How the links to `peers` are carried, by kind (what the report and the peer table show). */
export function linkCounts(mesh: Mesh, peers: readonly string[]): LinkCounts {
  const counts: LinkCounts = {};
  for (const id of new Set(peers)) {
    const kind = mesh.linkKind(id);
    if (kind) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}
