import { CompressionError, createCompressor, decodeInto, encodePayload } from '@peertrain/compress';
import type { CompressionSpec, Compressor, PayloadCompressor } from '@peertrain/compress';
import { ConfigError, ProtocolError } from '@peertrain/protocol';
import type { TensorMessage } from '@peertrain/transport';
import { f32ToBytes } from './f32.ts';

// The asynchronous parameter server's messages (ps-async.ts), as uint8 tensors:
//   push  (worker -> server): [u32 paramsVersion][body]
//   reply (server -> worker): [u32 version][u32 staleness][body]
//   final (server -> collector): [body], always raw float32
// body is a shard's raw little-endian float32 values ([4 * len] B) under compress 'none', otherwise
// one @peertrain/compress payload (fp16, int8 or topk). u32s are little-endian.

/** Byte offset of the body in a push and in a reply. */
export const PUSH_HEAD = 4;
export const REPLY_HEAD = 8;

/** The codecs a parameter server's pushes and pulls accept: payload codecs, or none. */
export type PsCodec = { kind: 'none' } | PayloadCompressor;

/**
 * A compressor for one shard's pushes or pulls. PowerSGD needs an all-reduce of its factors, which
 * a star of point-to-point exchanges does not have: it is refused with ConfigError.
 */
export function psCodec(spec: CompressionSpec, length: number, seed: number): PsCodec {
  if (spec.kind === 'powersgd') {
    throw new ConfigError('invalid parameter-server compression', [
      'powersgd compresses all-reduces only; use fp16, int8 or topk:FRACTION with ps-async',
    ]);
  }
  const c: Compressor = createCompressor(spec, { length, seed });
  if (c.kind === 'powersgd') throw new ConfigError('invalid parameter-server compression', ['powersgd']);
  return c;
}

/** Encodes `x` [len] as a body: raw float32 or a payload (topk also updates its error feedback). */
export function encodeBody(codec: PsCodec, x: Float32Array): Uint8Array {
  return codec.kind === 'none' ? f32ToBytes(x) : encodePayload(codec, x);
}

/** A message with a `head`-byte header followed by `body`, header u32s written little-endian. */
export function withHead(words: readonly number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 * words.length + body.byteLength);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  out.set(body, 4 * words.length);
  return out;
}

/** The `count` header u32s of a received message; ProtocolError when it is not uint8 or too short. */
export function readHead(msg: TensorMessage, count: number, from: string): number[] {
  if (msg.dtype !== 'uint8') {
    throw new ProtocolError('bad-dtype', `expected uint8 from ${from} (tag ${msg.tag}), got ${msg.dtype}`);
  }
  if (msg.data.byteLength < 4 * count) {
    throw new ProtocolError(
      'bad-length',
      `parameter-server message from ${from} is ${msg.data.byteLength} B`,
    );
  }
  const view = new DataView(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  return Array.from({ length: count }, (_, i) => view.getUint32(4 * i, true));
}

/**
 * Decodes a body into `out` [len]: overwrite (raw) or, with `add`, add the decoded values. Raw
 * bodies are checked for size (ProtocolError); payloads are checked whole by decodeInto
 * (CompressionError) before they touch `out`.
 */
export function decodeBody(
  codec: PsCodec['kind'],
  body: Uint8Array,
  out: Float32Array,
  add: boolean,
  from: string,
): void {
  if (codec !== 'none') {
    try {
      decodeInto(body, out, { add, codec });
    } catch (err) {
      if (err instanceof CompressionError) err.message = `${err.message} (from ${from})`;
      throw err;
    }
    return;
  }
  if (body.byteLength !== out.length * 4) {
    throw new ProtocolError(
      'bad-length',
      `expected ${out.length} float32 from ${from}, got ${body.byteLength} B`,
    );
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < out.length; i++) {
    const v = view.getFloat32(4 * i, true);
    out[i] = add ? out[i]! + v : v;
  }
}

/** A uint8 tensor message's fields for `bytes` (the caller adds the key). */
export const u8 = (bytes: Uint8Array): Pick<TensorMessage, 'dtype' | 'shape' | 'data'> => ({
  dtype: 'uint8',
  shape: [bytes.byteLength],
  data: bytes,
});
