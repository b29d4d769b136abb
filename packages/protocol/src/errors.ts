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
  override readonly name: string = 'TransportError';
}

/**
 * The signaling server already holds this peer id. A reloaded dashboard meets it while the old
 * page's socket is not yet gone (the server frees the id when that socket closes or times out).
 */
export class IdTakenError extends TransportError {
  override readonly name: string = 'IdTakenError';
  constructor(
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
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

/**
 * A checkpoint cannot be written, read or resumed from: a missing file, a digest mismatch, a
 * malformed manifest, or another run's configuration. The message says which.
 */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}
