// The worker's side of a dashboard reload. The coordinator lives in the dashboard tab: when that
// tab reloads (or is closed and opened again) its link closes, and comes back under the same id
// (coordinatorPeerId(room)) once the new page has registered it. The worker keeps its page, its
// engine and its peer id: the run in flight ends (PeerLostError), and it dials the coordinator's
// id again for up to PHASE_TIMEOUTS.coordinatorReturn, then says hello again. The dashboard
// resumes the interrupted run from its newest checkpoint with the workers that came back.
import { PHASE_TIMEOUTS, PeerLostError, PhaseTimeoutError } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import { deadline, sleep } from '@peertrain/base';
import { JOIN_RETRY_MS, dialCoordinator } from './links.ts';

/** What a run in flight is aborted with when the coordinator's link closes. */
export function coordinatorGone(coordinatorId: string): PeerLostError {
  return new PeerLostError(coordinatorId, 'coordinator went away; waiting for it to come back');
}

/**
 * Links to `coordinatorId` again once it is back on the signaling server: dials every
 * JOIN_RETRY_MS (dialCoordinator). Past `timeoutMs`: PhaseTimeoutError('waiting for the
 * coordinator to come back'). Errors other than "no such peer yet" (the worker's own signaling
 * socket is gone) fail at once, as they are.
 */
export async function awaitCoordinator(
  mesh: Mesh,
  coordinatorId: string,
  opts: { signal: AbortSignal; timeoutMs?: number },
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? PHASE_TIMEOUTS.coordinatorReturn.ms;
  try {
    // Not at once: the old page's signaling socket may still be closing, and an offer sent now can
    // reach it and go unanswered (seen in 5 of 10 reloads; then the dial's try had to run out).
    await sleep(JOIN_RETRY_MS, deadline(opts.signal, timeoutMs));
    await dialCoordinator(mesh, coordinatorId, opts.signal, timeoutMs);
  } catch (err) {
    opts.signal.throwIfAborted();
    const timedOut =
      err instanceof PeerLostError ||
      (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'));
    if (timedOut) throw new PhaseTimeoutError(PHASE_TIMEOUTS.coordinatorReturn.phase, timeoutMs);
    throw err;
  }
}
