import { CompressionError } from './errors.ts';

// Every payload starts with the same 8-byte header, little-endian:
//   [0] magic 0xc5, [1] codec id, [2] format version, [3] reserved (0), [4..8) u32 element count.
// The rest is the codec's (see each codec file). Payloads are byte-exact: a decoder refuses any
// payload whose length is not exactly what its header and fixed fields imply.

export const HEADER_BYTES = 8;
const MAGIC = 0xc5;
const VERSION = 1;

/** Wire ids of the payload codecs (PowerSGD exchanges plain float32 factors, so it has none). */
export const CODEC_IDS = { fp16: 1, int8: 2, topk: 3, sparse: 4, 'sparse-fp16': 5 } as const;
export type PayloadCodec = keyof typeof CODEC_IDS;
const CODEC_NAMES: readonly (PayloadCodec | undefined)[] = [
  undefined,
  'fp16',
  'int8',
  'topk',
  'sparse',
  'sparse-fp16',
];

/** Typed-array views write the platform's byte order; payloads are little-endian. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A new payload of `bytes` bytes with its header written; returns it and a DataView over it. */
export function newPayload(
  codec: PayloadCodec,
  length: number,
  bytes: number,
): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(bytes);
  writeHeader(out, codec, length);
  return { out, view: new DataView(out.buffer) };
}

/** Writes the header of a `codec` payload of `length` elements at the start of `out`. */
export function writeHeader(out: Uint8Array, codec: PayloadCodec, length: number): void {
  const view = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  view.setUint8(0, MAGIC);
  view.setUint8(1, CODEC_IDS[codec]);
  view.setUint8(2, VERSION);
  view.setUint8(3, 0);
  view.setUint32(4, length, true);
}

export interface PayloadHeader {
  codec: PayloadCodec;
  /** Elements of the decoded tensor. */
  length: number;
  view: DataView;
}

/** Reads and checks the header of `bytes`; CompressionError when it is not one of ours. */
export function readHeader(bytes: Uint8Array): PayloadHeader {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new CompressionError('truncated', `payload of ${bytes.byteLength} B is shorter than its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const codec = CODEC_NAMES[view.getUint8(1)];
  if (
    view.getUint8(0) !== MAGIC ||
    codec === undefined ||
    view.getUint8(2) !== VERSION ||
    view.getUint8(3) !== 0
  ) {
    throw new CompressionError(
      'bad-header',
      `magic ${view.getUint8(0)}, codec ${view.getUint8(1)}, version ${view.getUint8(2)}, reserved ${view.getUint8(3)}`,
    );
  }
  return { codec, length: view.getUint32(4, true), view };
}

/** The codec a payload says it is in (its header checked); CompressionError when it is not one of ours. */
export function payloadCodec(bytes: Uint8Array): PayloadCodec {
  return readHeader(bytes).codec;
}

/** Throws bad-length unless the payload is exactly `want` bytes. */
export function expectBytes(codec: PayloadCodec, got: number, want: number): void {
  if (got < want && got >= HEADER_BYTES) {
    throw new CompressionError('truncated', `${codec} payload has ${got} B, expected ${want} B`);
  }
  if (got !== want)
    throw new CompressionError('bad-length', `${codec} payload has ${got} B, expected ${want} B`);
}
