import { AbortError } from '@peertrain/protocol';

/** Anything thrown, as an Error (a bare abort reason becomes an AbortError). */
export function asError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new AbortError(typeof e === 'string' ? e : 'aborted');
}
