// Named errors of the codecs. Payloads come from other peers, so every malformed payload is refused
// by name (CompressionError with a stable code) before any of it is added into a buffer.

export type CompressionErrorCode =
  /** Fewer bytes than the header or the codec's fixed part needs. */
  | 'truncated'
  /** Wrong magic, version or codec id. */
  | 'bad-header'
  /** The payload's element count or byte length is not the one expected. */
  | 'bad-length'
  /** A scale or value is not finite (or out of the codec's range). */
  | 'bad-value'
  /** A top-k index out of range, not increasing, or a malformed varint. */
  | 'bad-index'
  /** The tensor to encode holds NaN or Infinity (the codec cannot represent it). */
  | 'non-finite-input'
  /** A stateful codec (PowerSGD) was driven out of order, or with a buffer of the wrong size. */
  | 'bad-state';

export class CompressionError extends Error {
  override readonly name = 'CompressionError';
  constructor(
    readonly code: CompressionErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
