import { IdTakenError } from '@peertrain/protocol';
import { sleep } from '@peertrain/base';

// A reloaded dashboard registers the room's coordinator id again (coordinatorPeerId(room): the
// workers dial that id, so it must not change). The old page frees it on pagehide; a page that
// crashed or was killed leaves its socket for the signaling server to time out (PeerJS: about a
// minute without a heartbeat), and until then the server answers 'unavailable-id'
// (IdTakenError). The page tries again, a bounded number of times.

/** Tries and the pause between them: about 70 s, past the PeerJS server's 60 s alive timeout. */
export const CLAIM_ID_RETRIES = { attempts: 15, delayMs: 5_000 } as const;

/** The coordinator's id was still held after every try (another dashboard tab of the room is open?). */
export class CoordinatorIdTakenError extends Error {
  override readonly name = 'CoordinatorIdTakenError';
  constructor(
    readonly id: string,
    attempts: number,
    readonly last: IdTakenError,
  ) {
    super(
      `the coordinator id "${id}" was still taken after ${attempts} tries (is another dashboard tab ` +
        `of this room open?): ${last.message}`,
    );
  }
}

/**
 * `open()` until it does not fail with IdTakenError: up to `attempts` tries, `delayMs` apart, then
 * CoordinatorIdTakenError. Other errors and an abort end it at once.
 */
export async function claimId<T>(
  id: string,
  open: (signal: AbortSignal) => Promise<T>,
  opts: {
    signal: AbortSignal;
    attempts?: number;
    delayMs?: number;
    onRetry?: (attempt: number, err: IdTakenError) => void;
    wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  },
): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? CLAIM_ID_RETRIES.attempts);
  const wait = opts.wait ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open(opts.signal);
    } catch (err) {
      opts.signal.throwIfAborted();
      if (!(err instanceof IdTakenError)) throw err;
      if (attempt >= attempts) throw new CoordinatorIdTakenError(id, attempts, err);
      opts.onRetry?.(attempt, err);
      await wait(opts.delayMs ?? CLAIM_ID_RETRIES.delayMs, opts.signal);
    }
  }
}
