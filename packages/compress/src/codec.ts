import { mulberry32 } from '@peertrain/base';

import { CompressionError } from './errors.ts';
import { decodeFp16Into, encodeFp16 } from './fp16.ts';
import { HEADER_BYTES, readHeader } from './header.ts';
import type { PayloadCodec } from './header.ts';
import { DEFAULT_INT8_BUCKET, decodeInt8Into, encodeInt8 } from './int8.ts';
import { PowerSgd } from './powersgd.ts';
import { decodeSparseInto, sparseMaskBytes } from './sparse.ts';
import type { CompressionSpec } from './spec.ts';
import { ErrorFeedback, decodeTopkInto, encodeTopk } from './topk.ts';

/**
 * One worker's compression state for one exchanged tensor (flat [length] float32): what a
 * collective needs to compress it, step after step. Create one per tensor and keep it across steps.
 */
export type Compressor =
  | { kind: 'none' }
  | { kind: 'fp16' }
  | { kind: 'int8'; bucketElems: number; random: () => number }
  | { kind: 'topk'; fraction: number; feedback: ErrorFeedback }
  | { kind: 'powersgd'; power: PowerSgd };

export interface CompressorOptions {
  /** Elements of the exchanged tensor. */
  length: number;
  /** Seed of int8's stochastic rounding (should differ per worker) and of PowerSGD's initial Q
   *  (must be the SAME on every worker: pass powersgdSeed to keep both right). */
  seed: number;
  /** PowerSGD's Q seed, the same on every worker (default: `seed`). */
  powersgdSeed?: number;
  /** PowerSGD: the shapes laid out back to back in the flat tensor (default: one 1-D tensor,
   *  which PowerSGD sends uncompressed). */
  shapes?: readonly (readonly number[])[];
  /** int8: elements per scale (default 256). */
  int8BucketElems?: number;
}

export function createCompressor(spec: CompressionSpec, opts: CompressorOptions): Compressor {
  switch (spec.kind) {
    case 'none':
    case 'fp16':
      return { kind: spec.kind };
    case 'int8':
      return {
        kind: 'int8',
        bucketElems: opts.int8BucketElems ?? DEFAULT_INT8_BUCKET,
        random: mulberry32(opts.seed),
      };
    case 'topk':
      return { kind: 'topk', fraction: spec.fraction, feedback: new ErrorFeedback(opts.length) };
    case 'powersgd': {
      const power = new PowerSgd({
        shapes: opts.shapes ?? [[opts.length]],
        rank: spec.rank,
        seed: opts.powersgdSeed ?? opts.seed,
      });
      if (power.length !== opts.length) {
        throw new CompressionError(
          'bad-state',
          `shapes hold ${power.length} elements, tensor ${opts.length}`,
        );
      }
      return { kind: 'powersgd', power };
    }
    default: {
      const unknown: never = spec;
      throw new CompressionError('bad-state', `unknown compression ${JSON.stringify(unknown)}`);
    }
  }
}

/** The payload codecs (one payload per tensor or chunk); none and PowerSGD have no payload. */
export type PayloadCompressor = Extract<Compressor, { kind: PayloadCodec }>;

/** Encodes x [n] into a fresh payload (top-k also updates its error feedback). */
export function encodePayload(c: PayloadCompressor, x: Float32Array): Uint8Array {
  switch (c.kind) {
    case 'fp16':
      return encodeFp16(x);
    case 'int8':
      return encodeInt8(x, { random: c.random, bucketElems: c.bucketElems });
    case 'topk':
      return encodeTopk(x, c.fraction, c.feedback);
  }
}

export interface DecodeOptions {
  /** Add into `out` instead of overwriting it (default false). */
  add?: boolean;
  /** Refuse (bad-header) a payload of another codec. */
  codec?: PayloadCodec;
}

/**
 * Decodes a payload of any codec into `out` (overwrite, or add with `add`), checking everything
 * first: a CompressionError leaves `out` untouched. The payload must hold exactly out.length elements.
 */
export function decodeInto(bytes: Uint8Array, out: Float32Array, opts: DecodeOptions = {}): void {
  const h = readHeader(bytes);
  if (opts.codec !== undefined && h.codec !== opts.codec) {
    throw new CompressionError('bad-header', `expected a ${opts.codec} payload, got ${h.codec}`);
  }
  if (h.length !== out.length) {
    throw new CompressionError(
      'bad-length',
      `${h.codec} payload holds ${h.length} elements, expected ${out.length}`,
    );
  }
  const add = opts.add ?? false;
  switch (h.codec) {
    case 'fp16':
      return decodeFp16Into(h, bytes.byteLength, out, add);
    case 'int8':
      return decodeInt8Into(h, bytes.byteLength, out, add);
    case 'topk':
      return decodeTopkInto(h, bytes.byteLength, out, add);
    case 'sparse':
    case 'sparse-fp16':
      return decodeSparseInto(h.codec, h, bytes.byteLength, out, add);
  }
}

/**
 * The fewest bytes a payload of `length` elements can have: every element has a place in fp16,
 * int8 and the zero-skipping mask; top-k's payload does not grow with the length.
 */
function leastBytes(codec: PayloadCodec, length: number): number {
  switch (codec) {
    case 'fp16':
      return HEADER_BYTES + 2 * length;
    case 'int8':
      return HEADER_BYTES + 4 + length;
    case 'sparse':
    case 'sparse-fp16':
      return HEADER_BYTES + sparseMaskBytes(length);
    case 'topk':
      return HEADER_BYTES + 8;
  }
}

/**
 * Decodes a payload into a fresh Float32Array of the length its header gives (at most maxLength).
 * A header that claims more elements than the payload could hold is refused before the array is
 * allocated (a peer's few bytes cannot make this side allocate a gigabyte).
 */
export function decode(bytes: Uint8Array, maxLength = 1 << 28): Float32Array {
  const { codec, length } = readHeader(bytes);
  if (length > maxLength) throw new CompressionError('bad-length', `payload claims ${length} elements`);
  if (bytes.byteLength < leastBytes(codec, length))
    throw new CompressionError(
      'truncated',
      `${codec} payload of ${bytes.byteLength} B cannot hold ${length} elements`,
    );
  const out = new Float32Array(length);
  decodeInto(bytes, out);
  return out;
}

/** ||approx - exact||_2 / ||exact||_2 (0 when both are 0): the error a lossy exchange added. */
export function relativeError(approx: ArrayLike<number>, exact: ArrayLike<number>): number {
  if (approx.length !== exact.length) throw new RangeError(`lengths ${approx.length} and ${exact.length}`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < exact.length; i++) {
    const e = exact[i]!;
    const d = approx[i]! - e;
    diff += d * d;
    norm += e * e;
  }
  if (norm === 0) return diff === 0 ? 0 : Infinity;
  return Math.sqrt(diff / norm);
}
