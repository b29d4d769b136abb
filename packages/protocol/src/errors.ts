// Named errors shared by every package. Each has a stable `name` so it survives the wire
// (control messages carry `{ name, message }`) and can be matched without instanceof.

export type ProtocolErrorCode =
  | 'bad-magic'
  | 'bad-version'
  | 'bad-kind'
  | 'bad-dtype'
  | 'bad-shape'
  | 'bad-length'
  | 'bad-chunk'
  | 'bad-json'
  | 'bad-message';

/** A frame or message failed validation on arrival. The frame is dropped; the connection lives on. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** The other side speaks a different protocol version; refused at the handshake. */
export class VersionMismatchError extends Error {
  override readonly name = 'VersionMismatchError';
  constructor(
    readonly local: number,
    readonly remote: number,
  ) {
    super(`protocol version mismatch: local ${local}, remote ${remote}`);
  }
}

/** A peer went away (connection closed, heartbeat lost) while something waited on it. */
export class PeerLostError extends Error {
  override readonly name = 'PeerLostError';
  constructor(
    readonly peerId: string,
    reason = 'connection closed',
  ) {
    super(`peer ${peerId} lost: ${reason}`);
  }
}

/** The transport itself is closed (or failed to open). */
export class TransportError extends Error {
  override readonly name = 'TransportError';
}

/** A user or wire configuration is invalid. `issues` lists every problem found. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(issues.length > 0 ? `${message}: ${issues.join('; ')}` : message);
  }
}

/** A compute backend failed to initialise or failed its numeric self-check. */
export class BackendError extends Error {
  override readonly name = 'BackendError';
}

/** A named phase did not finish in time. */
export class PhaseTimeoutError extends Error {
  override readonly name = 'PhaseTimeoutError';
  constructor(
    readonly phase: string,
    readonly ms: number,
  ) {
    super(`${phase} timed out after ${ms} ms`);
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'aborted') {
    super(message);
  }
}

/** Throws the signal's reason as an AbortError if the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    throw reason instanceof Error ? reason : new AbortError(typeof reason === 'string' ? reason : 'aborted');
  }
}

/** The error an aborted signal stands for: its reason when that is an Error, else an AbortError. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new AbortError(typeof reason === 'string' ? reason : 'aborted');
}

/** Resolves after `ms`, or rejects with the signal's reason (and clears the timer) on abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      // eslint-disable-next-line no-restricted-globals -- sleep is what pure packages use instead of a raw timer: it owns this one
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    // eslint-disable-next-line no-restricted-globals -- as above: the one raw timer, cleared on abort
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Plain form of an error for control messages. */
export interface WireError {
  name: string;
  message: string;
  /** For a PeerLostError: the peer that was lost, so the receiver can name it without parsing. */
  peerId?: string | undefined;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof PeerLostError) return { name: err.name, message: err.message, peerId: err.peerId };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}
