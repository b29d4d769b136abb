import { ProtocolError } from './errors.ts';
import { parseControl } from './messages.ts';
import type { ControlMessage } from './messages.ts';
import { PROTOCOL_VERSION } from './version.ts';

/*
 * Binary frames: the only thing that crosses a data channel.
 *
 * One message (a control message or a tensor) becomes one or more frames, each small enough for the
 * link's maxMessageSize. Every frame repeats the whole header, so each can be validated on its own.
 * All integers are little-endian. The header length (44 + 4 * rank bytes) is a multiple of 4, so a
 * payload that starts at an aligned frame can be viewed as Float32Array / Int32Array without a copy.
 *
 *   offset size field
 *    0     u16  magic        0x5450 ("PT")
 *    2     u8   version      PROTOCOL_VERSION; any other value is refused ('bad-version')
 *    3     u8   kind         1 = control (UTF-8 JSON of a ControlMessage), 2 = tensor
 *    4     u8   dtype        1 float32, 2 int32, 3 uint8, 4 float16, 5 int8 (control: uint8)
 *    5     u8   rank         0..8 (control: 0)
 *    6     u16  reserved     written 0, ignored on arrival
 *    8     u32  msgId        unique per sender and link while the message is in flight (reassembly key)
 *   12     u32  chunkIndex   0..chunkCount-1; chunks of one message arrive in order
 *   16     u32  chunkCount   >= 1
 *   20     u32  totalBytes   payload bytes of the whole message
 *   24     u32  offset       byte offset of this chunk's payload inside the message payload
 *   28     u32  runId
 *   32     u32  step
 *   36     u32  microBatch   0xFFFFFFFF = none
 *   40     u32  tag
 *   44     u32 * rank dims   tensor shape; product(dims) * bytesPerElement(dtype) = totalBytes
 *   44+4r  ...  payload      this chunk's bytes: payload[offset, offset + length)
 *
 * Control frames carry runId = step = tag = 0 and microBatch = none.
 * Chunk payloads are multiples of 8 bytes except the last, and never empty unless totalBytes = 0
 * (then there is exactly one chunk).
 */

export const FRAME_MAGIC = 0x5450;
/** Fixed part of the header, before the dims. */
export const FRAME_HEADER_BYTES = 44;
export const MAX_RANK = 8;
const NO_MICRO_BATCH = 0xffffffff;
const U32_MAX = 0xffffffff;
/** Smallest maxFrameBytes accepted by encodeMessage: the largest header plus 8 payload bytes. */
export const MIN_FRAME_BYTES = FRAME_HEADER_BYTES + 4 * MAX_RANK + 8;

export type DType = 'float32' | 'int32' | 'uint8' | 'float16' | 'int8';

/** Wire codes; index 0 is unused. */
const DTYPE_CODES: readonly DType[] = ['float32', 'int32', 'uint8', 'float16', 'int8'];
export const DTYPES: readonly DType[] = DTYPE_CODES;

const BYTES_PER_ELEMENT: Record<DType, number> = { float32: 4, int32: 4, uint8: 1, float16: 2, int8: 1 };

export function bytesPerElement(dtype: DType): number {
  return BYTES_PER_ELEMENT[dtype];
}

/** A tensor on the wire (re-exported by @peertrain/transport). */
export interface TensorMessage {
  runId: number;
  step: number;
  /** null when the tensor is not tied to a micro-batch. */
  microBatch: number | null;
  tag: number;
  dtype: DType;
  shape: number[];
  /** Raw little-endian bytes; byteLength = product(shape) * bytesPerElement(dtype); byteOffset % 4 = 0. */
  data: Uint8Array;
}

/** A whole message, as encoded by encodeMessage and returned by Reassembler.push. */
export type WireMessage =
  { kind: 'control'; control: ControlMessage } | { kind: 'tensor'; tensor: TensorMessage };

/** One validated frame. `payload` is a view into the frame bytes (no copy). */
export interface Frame {
  kind: 'control' | 'tensor';
  dtype: DType;
  shape: number[];
  msgId: number;
  chunkIndex: number;
  chunkCount: number;
  totalBytes: number;
  offset: number;
  runId: number;
  step: number;
  microBatch: number | null;
  tag: number;
  payload: Uint8Array;
}

export interface EncodeOptions {
  /** Upper bound on every frame's byteLength (the link's maxMessageSize or less); >= MIN_FRAME_BYTES. */
  maxFrameBytes: number;
  /** u32, unique among this sender's messages in flight on the link. */
  msgId: number;
}

const textEncoder = new TextEncoder();

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

/** product(shape), or Infinity once it passes 2^32 (so it never loses precision). */
function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > U32_MAX) return Number.POSITIVE_INFINITY;
  }
  return n;
}

/** Splits one message into frames of at most maxFrameBytes. Throws ProtocolError on an invalid tensor. */
export function encodeMessage(msg: WireMessage, opts: EncodeOptions): Uint8Array[] {
  const { maxFrameBytes, msgId } = opts;
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < MIN_FRAME_BYTES) {
    throw new RangeError(`maxFrameBytes must be an integer >= ${MIN_FRAME_BYTES}, got ${maxFrameBytes}`);
  }
  if (!isU32(msgId)) throw new RangeError(`msgId must be a u32, got ${msgId}`);

  let kindCode: number;
  let dtype: DType;
  let shape: readonly number[];
  let payload: Uint8Array;
  let ids: { runId: number; step: number; microBatch: number; tag: number };
  if (msg.kind === 'control') {
    kindCode = 1;
    dtype = 'uint8';
    shape = [];
    payload = textEncoder.encode(JSON.stringify(msg.control));
    ids = { runId: 0, step: 0, microBatch: NO_MICRO_BATCH, tag: 0 };
  } else {
    const t = msg.tensor;
    kindCode = 2;
    dtype = t.dtype;
    shape = t.shape;
    payload = t.data;
    if (!DTYPE_CODES.includes(dtype)) throw new ProtocolError('bad-dtype', `unknown dtype ${String(dtype)}`);
    if (shape.length > MAX_RANK) throw new ProtocolError('bad-shape', `rank ${shape.length} > ${MAX_RANK}`);
    if (!shape.every(isU32)) throw new ProtocolError('bad-shape', `dims must be u32: [${shape.join(', ')}]`);
    const expected = elementCount(shape) * bytesPerElement(dtype);
    if (expected !== payload.byteLength) {
      throw new ProtocolError(
        'bad-shape',
        `shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes, data has ${payload.byteLength}`,
      );
    }
    const mb = t.microBatch ?? NO_MICRO_BATCH;
    if (![t.runId, t.step, t.tag, mb].every(isU32) || t.microBatch === NO_MICRO_BATCH) {
      throw new ProtocolError(
        'bad-message',
        'runId, step, tag and microBatch must be u32 (microBatch < 0xFFFFFFFF)',
      );
    }
    ids = { runId: t.runId, step: t.step, microBatch: mb, tag: t.tag };
  }
  const totalBytes = payload.byteLength;
  if (totalBytes > U32_MAX)
    throw new ProtocolError('bad-length', `message of ${totalBytes} bytes exceeds u32`);

  const headerBytes = FRAME_HEADER_BYTES + 4 * shape.length;
  // Multiple of 8 so every chunk but the last keeps 8-byte alignment inside the message.
  const chunkPayload = Math.floor((maxFrameBytes - headerBytes) / 8) * 8;
  const chunkCount = totalBytes === 0 ? 1 : Math.ceil(totalBytes / chunkPayload);

  const frames: Uint8Array[] = [];
  for (let i = 0; i < chunkCount; i++) {
    const offset = i * chunkPayload;
    const length = Math.min(chunkPayload, totalBytes - offset);
    const frame = new Uint8Array(headerBytes + length);
    const v = new DataView(frame.buffer);
    v.setUint16(0, FRAME_MAGIC, true);
    v.setUint8(2, PROTOCOL_VERSION);
    v.setUint8(3, kindCode);
    v.setUint8(4, DTYPE_CODES.indexOf(dtype) + 1);
    v.setUint8(5, shape.length);
    v.setUint16(6, 0, true);
    v.setUint32(8, msgId, true);
    v.setUint32(12, i, true);
    v.setUint32(16, chunkCount, true);
    v.setUint32(20, totalBytes, true);
    v.setUint32(24, offset, true);
    v.setUint32(28, ids.runId, true);
    v.setUint32(32, ids.step, true);
    v.setUint32(36, ids.microBatch, true);
    v.setUint32(40, ids.tag, true);
    shape.forEach((d, k) => v.setUint32(FRAME_HEADER_BYTES + 4 * k, d, true));
    frame.set(payload.subarray(offset, offset + length), headerBytes);
    frames.push(frame);
  }
  return frames;
}

/** Parses and validates one frame. Throws ProtocolError (with its code) on anything malformed. */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('bad-length', 'frame is not a Uint8Array');
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    throw new ProtocolError('bad-length', `frame of ${bytes.byteLength} bytes is shorter than the header`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = v.getUint16(0, true);
  if (magic !== FRAME_MAGIC)
    throw new ProtocolError('bad-magic', `magic 0x${magic.toString(16)} is not 0x5450`);
  const version = v.getUint8(2);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError('bad-version', `frame version ${version}, this peer speaks ${PROTOCOL_VERSION}`);
  }
  const kindCode = v.getUint8(3);
  if (kindCode !== 1 && kindCode !== 2) throw new ProtocolError('bad-kind', `unknown frame kind ${kindCode}`);
  const kind = kindCode === 1 ? 'control' : 'tensor';
  const dtype = DTYPE_CODES[v.getUint8(4) - 1];
  if (dtype === undefined) throw new ProtocolError('bad-dtype', `unknown dtype code ${v.getUint8(4)}`);
  const rank = v.getUint8(5);
  if (rank > MAX_RANK) throw new ProtocolError('bad-shape', `rank ${rank} > ${MAX_RANK}`);
  const headerBytes = FRAME_HEADER_BYTES + 4 * rank;
  if (bytes.byteLength < headerBytes) {
    throw new ProtocolError('bad-length', `frame of ${bytes.byteLength} bytes is shorter than its header`);
  }
  const msgId = v.getUint32(8, true);
  const chunkIndex = v.getUint32(12, true);
  const chunkCount = v.getUint32(16, true);
  const totalBytes = v.getUint32(20, true);
  const offset = v.getUint32(24, true);
  const mb = v.getUint32(36, true);
  const shape: number[] = [];
  for (let k = 0; k < rank; k++) shape.push(v.getUint32(FRAME_HEADER_BYTES + 4 * k, true));

  if (kind === 'control') {
    if (dtype !== 'uint8') throw new ProtocolError('bad-dtype', `control frame with dtype ${dtype}`);
    if (rank !== 0) throw new ProtocolError('bad-shape', `control frame with rank ${rank}`);
  } else {
    const expected = elementCount(shape) * bytesPerElement(dtype);
    if (expected !== totalBytes) {
      throw new ProtocolError(
        'bad-shape',
        `shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes, header says ${totalBytes}`,
      );
    }
  }
  if (chunkCount === 0 || chunkIndex >= chunkCount) {
    throw new ProtocolError('bad-chunk', `chunk ${chunkIndex} of ${chunkCount}`);
  }
  if (chunkCount > 1 && chunkCount > totalBytes) {
    throw new ProtocolError('bad-chunk', `${chunkCount} chunks for ${totalBytes} bytes`);
  }
  if (chunkIndex === 0 && offset !== 0)
    throw new ProtocolError('bad-chunk', `first chunk at offset ${offset}`);
  const length = bytes.byteLength - headerBytes;
  if (offset + length > totalBytes) {
    throw new ProtocolError(
      'bad-length',
      `chunk [${offset}, ${offset + length}) overruns ${totalBytes} bytes`,
    );
  }
  if (chunkIndex === chunkCount - 1 && offset + length !== totalBytes) {
    throw new ProtocolError(
      'bad-length',
      `last chunk ends at ${offset + length}, message has ${totalBytes} bytes`,
    );
  }
  if (length === 0 && totalBytes !== 0) throw new ProtocolError('bad-length', 'empty chunk');
  if (offset % 8 !== 0 || (chunkIndex < chunkCount - 1 && length % 8 !== 0)) {
    throw new ProtocolError('bad-length', `chunk [${offset}, ${offset + length}) is not 8-byte aligned`);
  }

  return {
    kind,
    dtype,
    shape,
    msgId,
    chunkIndex,
    chunkCount,
    totalBytes,
    offset,
    runId: v.getUint32(28, true),
    step: v.getUint32(32, true),
    microBatch: mb === NO_MICRO_BATCH ? null : mb,
    tag: v.getUint32(40, true),
    payload: bytes.subarray(headerBytes),
  };
}

export interface ReassemblerLimits {
  /** Messages in flight at once (partially received); default 32. */
  maxPartialMessages?: number;
  /** Bytes held for partial messages, all together; default 256 MiB. */
  maxPartialBytes?: number;
  /** Largest single message accepted; default maxPartialBytes. */
  maxMessageBytes?: number;
}

interface Partial {
  first: Frame;
  buffer: Uint8Array;
  received: number;
  nextIndex: number;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Puts chunks back together, for one connection (msgIds are per sender). Chunks of one message must
 * arrive in order (the link is ordered); chunks of different messages may interleave. Inconsistent
 * chunks, and messages over the limits, are refused with ProtocolError; a refused message is dropped
 * whole, so its later chunks are refused too ('bad-chunk'). Memory held never exceeds maxPartialBytes.
 */
export class Reassembler {
  private readonly partials = new Map<number, Partial>();
  private heldBytes = 0;
  private readonly maxPartialMessages: number;
  private readonly maxPartialBytes: number;
  private readonly maxMessageBytes: number;

  constructor(limits: ReassemblerLimits = {}) {
    this.maxPartialMessages = limits.maxPartialMessages ?? 32;
    this.maxPartialBytes = limits.maxPartialBytes ?? 256 * 2 ** 20;
    this.maxMessageBytes = Math.min(limits.maxMessageBytes ?? this.maxPartialBytes, this.maxPartialBytes);
  }

  /** Messages currently incomplete. */
  get partialCount(): number {
    return this.partials.size;
  }

  /** Bytes currently allocated for incomplete messages. */
  get partialBytes(): number {
    return this.heldBytes;
  }

  /** Adds one validated frame; returns the message once complete, else null. Throws ProtocolError. */
  push(frame: Frame): WireMessage | null {
    if (frame.totalBytes > this.maxMessageBytes) {
      this.drop(frame.msgId);
      throw new ProtocolError(
        'bad-length',
        `message of ${frame.totalBytes} bytes exceeds ${this.maxMessageBytes}`,
      );
    }
    if (frame.chunkCount === 1) {
      // Whole message in one frame: no copy unless the payload view is misaligned.
      if (this.partials.has(frame.msgId)) {
        this.drop(frame.msgId);
        throw new ProtocolError('bad-chunk', `message ${frame.msgId} restarted while incomplete`);
      }
      const data = frame.payload.byteOffset % 4 === 0 ? frame.payload : frame.payload.slice();
      return toMessage(frame, data);
    }

    let p = this.partials.get(frame.msgId);
    if (frame.chunkIndex === 0) {
      if (p) {
        this.drop(frame.msgId);
        throw new ProtocolError('bad-chunk', `message ${frame.msgId} restarted while incomplete`);
      }
      if (this.partials.size >= this.maxPartialMessages) {
        throw new ProtocolError('bad-chunk', `more than ${this.maxPartialMessages} messages in flight`);
      }
      // Every chunk but the last has the first chunk's length, so the count follows from it.
      if (frame.chunkCount !== Math.ceil(frame.totalBytes / frame.payload.byteLength)) {
        throw new ProtocolError(
          'bad-chunk',
          `${frame.chunkCount} chunks of ${frame.payload.byteLength} bytes`,
        );
      }
      if (this.heldBytes + frame.totalBytes > this.maxPartialBytes) {
        throw new ProtocolError(
          'bad-length',
          `partial messages would hold more than ${this.maxPartialBytes} bytes`,
        );
      }
      p = { first: frame, buffer: new Uint8Array(frame.totalBytes), received: 0, nextIndex: 0 };
      this.partials.set(frame.msgId, p);
      this.heldBytes += frame.totalBytes;
    } else if (!p) {
      throw new ProtocolError('bad-chunk', `chunk ${frame.chunkIndex} of unknown message ${frame.msgId}`);
    }

    const problem = inconsistency(p, frame);
    if (problem !== null) {
      this.drop(frame.msgId);
      throw new ProtocolError('bad-chunk', `message ${frame.msgId}: ${problem}`);
    }
    p.buffer.set(frame.payload, frame.offset);
    p.received += frame.payload.byteLength;
    p.nextIndex++;
    if (p.nextIndex < frame.chunkCount) return null;
    this.drop(frame.msgId);
    return toMessage(p.first, p.buffer);
  }

  /** Forgets every partial message (e.g. when the link closes). */
  clear(): void {
    this.partials.clear();
    this.heldBytes = 0;
  }

  private drop(msgId: number): void {
    const p = this.partials.get(msgId);
    if (!p) return;
    this.partials.delete(msgId);
    this.heldBytes -= p.first.totalBytes;
  }
}

function inconsistency(p: Partial, f: Frame): string | null {
  const a = p.first;
  if (f.chunkIndex !== p.nextIndex) return `chunk ${f.chunkIndex} arrived, expected ${p.nextIndex}`;
  if (f.offset !== p.received) return `chunk at offset ${f.offset}, expected ${p.received}`;
  if (f.chunkIndex < f.chunkCount - 1 && f.payload.byteLength !== a.payload.byteLength) {
    return `chunk of ${f.payload.byteLength} bytes, the first had ${a.payload.byteLength}`;
  }
  if (
    f.kind !== a.kind ||
    f.dtype !== a.dtype ||
    f.chunkCount !== a.chunkCount ||
    f.totalBytes !== a.totalBytes ||
    f.runId !== a.runId ||
    f.step !== a.step ||
    f.microBatch !== a.microBatch ||
    f.tag !== a.tag ||
    f.shape.length !== a.shape.length ||
    f.shape.some((d, i) => d !== a.shape[i])
  ) {
    return 'header differs from the first chunk';
  }
  return null;
}

function toMessage(f: Frame, data: Uint8Array): WireMessage {
  if (f.kind === 'tensor') {
    return {
      kind: 'tensor',
      tensor: {
        runId: f.runId,
        step: f.step,
        microBatch: f.microBatch,
        tag: f.tag,
        dtype: f.dtype,
        shape: f.shape,
        data,
      },
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(textDecoder.decode(data));
  } catch (err) {
    throw new ProtocolError('bad-json', err instanceof Error ? err.message : String(err));
  }
  return { kind: 'control', control: parseControl(json) };
}
