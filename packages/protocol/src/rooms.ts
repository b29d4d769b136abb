import { ConfigError } from './errors.ts';

// Rooms are separated by peer id: every peer id of a room starts with `pt-<room>-`. The coordinator
// admits only hellos from ids of its own room, so peers of other rooms never mix even though they
// share one signaling server.

const ROOM_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function validateRoom(room: string): string {
  if (!ROOM_RE.test(room)) {
    throw new ConfigError(`invalid room name "${room}"`, ['use 1-32 characters: a-z, 0-9 and -']);
  }
  return room;
}

export function coordinatorPeerId(room: string): string {
  return `pt-${validateRoom(room)}-coordinator`;
}

/** `nonce`: random [a-z0-9]+ chosen by the worker (unique in the room). */
export function workerPeerId(room: string, nonce: string): string {
  return `pt-${validateRoom(room)}-w-${nonce}`;
}

export function isPeerOfRoom(peerId: string, room: string): boolean {
  return peerId.startsWith(`pt-${room}-`);
}

/** Random lowercase id fragment for peer ids and room names. */
export function randomId(length = 8): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

/**
 * The key of the trained parameters rank 0 sends the coordinator after the last step, or after the
 * step whose evaluation reached the target accuracy (float32, the whole model's flat array), ahead
 * of the final evaluation result.
 */
export function finalParamsKey(
  runId: number,
  steps: number,
): { runId: number; step: number; microBatch: null; tag: number } {
  return { runId, step: steps, microBatch: null, tag: 0x7fff_0000 };
}

/** The tag of bandwidth probe payloads (see probeKey). */
export const PROBE_TAG = 0x7ffe_0000;

/**
 * The key of a bandwidth probe's payload (coordinator to worker, between runs): runId 0 is never
 * a run's, and the tag is one no collective or pipeline uses.
 */
export function probeKey(id: number): { runId: number; step: number; microBatch: null; tag: number } {
  return { runId: 0, step: id, microBatch: null, tag: PROBE_TAG };
}

/**
 * Where a worker page's engine computes (its `compute=` parameter): in a thread of its own (a
 * dedicated Worker: the page's thread stays free for the links while steps compute), or on the
 * page's thread.
 */
export const COMPUTE_PLACES = ['thread', 'page'] as const;
export type ComputePlace = (typeof COMPUTE_PLACES)[number];
export const DEFAULT_COMPUTE_PLACE: ComputePlace = 'page';
