import { ProtocolError } from '@peertrain/protocol';
import type { Mesh, TensorKey, TensorMessage } from '@peertrain/transport';

// float32 vectors on the wire: raw little-endian bytes (the frame layout: packages/protocol/src/frame.ts). Every browser and
// Node platform in practice is little-endian; the DataView paths keep a big-endian one correct.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Fresh little-endian bytes of `src` ([n] -> [4n]). A copy: the caller may change `src` right after. */
export function f32ToBytes(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 4);
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  } else {
    const view = new DataView(out.buffer);
    for (let i = 0; i < src.length; i++) view.setFloat32(i * 4, src[i] ?? 0, true);
  }
  return out;
}

/**
 * The `length` float32 values of a received tensor ([4 * length] bytes -> [length]): a view when the
 * bytes are aligned, otherwise a copy. Throws ProtocolError when the dtype or size is not what the
 * algorithm expects (peers disagree on the vector's size, or a stale or foreign message matched).
 */
export function f32FromMessage(msg: TensorMessage, length: number, from: string): Float32Array {
  if (msg.dtype !== 'float32') {
    throw new ProtocolError('bad-dtype', `expected float32 from ${from} (tag ${msg.tag}), got ${msg.dtype}`);
  }
  const bytes = msg.data;
  if (bytes.byteLength !== length * 4) {
    throw new ProtocolError(
      'bad-length',
      `expected ${length} float32 (${length * 4} B) from ${from} (tag ${msg.tag}), got ${bytes.byteLength} B`,
    );
  }
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0)
    return new Float32Array(bytes.buffer, bytes.byteOffset, length);
  const out = new Float32Array(length);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** Payload bytes moved by one operation (tensor data only, not frame headers). */
export interface TrafficStats {
  bytesSent: number;
  bytesReceived: number;
}

/**
 * The little-endian bytes of `values` ([n] -> [4n]): a view of the same memory on little-endian
 * platforms (no copy), a copy elsewhere. For payloads handed to Mesh.sendTensor, which reads them
 * before it returns; use f32ToBytes where the bytes must outlive later changes to `values`.
 */
export function f32Bytes(values: Float32Array): Uint8Array {
  return LITTLE_ENDIAN
    ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    : f32ToBytes(values);
}

/**
 * Sends `values` ([n] float32) to `peerId` under `key`; counts the payload once the mesh accepted it.
 * No copy here: the Mesh copies the payload into its frames before sendTensor returns, so the caller
 * may change `values` as soon as this is called (the ring still waits for the send to resolve).
 */
export async function sendF32(
  mesh: Mesh,
  peerId: string,
  key: TensorKey,
  values: Float32Array,
  traffic: TrafficStats,
  signal: AbortSignal,
): Promise<void> {
  const data = f32Bytes(values);
  await mesh.sendTensor(peerId, { ...key, dtype: 'float32', shape: [values.length], data }, { signal });
  traffic.bytesSent += data.byteLength;
}

/** Receives the [length] float32 tensor `key` from `peerId` (validated; see f32FromMessage). */
export async function recvF32(
  mesh: Mesh,
  peerId: string,
  key: TensorKey,
  length: number,
  traffic: TrafficStats,
  signal: AbortSignal,
): Promise<Float32Array> {
  const msg = await mesh.recvTensor(peerId, key, { signal });
  const values = f32FromMessage(msg, length, peerId);
  traffic.bytesReceived += msg.data.byteLength;
  return values;
}

/** Largest tag the wire carries (a u32 in the frame header). */
export const MAX_TAG = 0xffff_ffff;
