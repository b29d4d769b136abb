// Streaming the committed state to a peer that joins an elastic run. The sender (the epoch's first
// member) sends a header, then the state in chunks; the joiner checks the digest before it applies
// anything. Framing, all keyed { runId, step: fromStep, tag }:
//   header   tag STATE_HEAD_TAG, microBatch null: int32 (read as uint32) [floats, chunks, fnv1a(bytes of the state)]
//   chunk i  tag STATE_CHUNK_TAG, microBatch i:   float32 [<= STATE_CHUNK_FLOATS]
// The state is one float32 vector: the parameters [P] then the optimizer's state arrays in the
// order Optimizer.state() lists them (the joiner's own optimizer has the same layout).
import type { Mesh } from '@peertrain/transport';

/** Floats per chunk: 64 KiB, well under a data channel's message size once framed by the mesh. */
export const STATE_CHUNK_FLOATS = 16_384;
const STATE_HEAD_TAG = 0x7ffd_0001;
const STATE_CHUNK_TAG = 0x7ffd_0000;

/** The streamed state's bytes do not match the digest its header announced. */
export class StateDigestError extends Error {
  override readonly name = 'StateDigestError';
}

/** 32-bit FNV-1a over the bytes: cheap, and any flipped or lost byte changes it. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The inverse of protocol's joinState (parameters, then optimizer arrays) into `params` and arrays shaped like `like` (the joiner's own state). */
export function unpackState(
  state: Float32Array,
  params: Float32Array,
  like: readonly Float32Array[],
): Float32Array[] {
  const want = params.length + like.reduce((n, a) => n + a.length, 0);
  if (state.length !== want)
    throw new StateDigestError(`state of ${state.length} floats, this model and optimizer hold ${want}`);
  params.set(state.subarray(0, params.length));
  let at = params.length;
  return like.map((a) => {
    const part = state.slice(at, at + a.length);
    at += a.length;
    return part;
  });
}

interface StateKey {
  runId: number;
  /** The step the state is committed before (the epoch's fromStep). */
  step: number;
}

const bytesOf = (a: Float32Array | Uint32Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Sends `state` to `to`: the header, then the chunks in order (the mesh applies backpressure). */
export async function sendState(
  mesh: Mesh,
  to: string,
  key: StateKey,
  state: Float32Array,
  opts: { signal: AbortSignal },
): Promise<void> {
  const chunks = Math.ceil(state.length / STATE_CHUNK_FLOATS);
  const head = new Uint32Array([state.length, chunks, fnv1a(bytesOf(state))]);
  const ids = { runId: key.runId, step: key.step };
  await mesh.sendTensor(
    to,
    { ...ids, microBatch: null, tag: STATE_HEAD_TAG, dtype: 'int32', shape: [3], data: bytesOf(head) },
    opts,
  );
  for (let i = 0; i < chunks; i++) {
    const part = state.subarray(i * STATE_CHUNK_FLOATS, (i + 1) * STATE_CHUNK_FLOATS);
    await mesh.sendTensor(
      to,
      {
        ...ids,
        microBatch: i,
        tag: STATE_CHUNK_TAG,
        dtype: 'float32',
        shape: [part.length],
        data: bytesOf(part),
      },
      opts,
    );
  }
}

/** Receives what sendState sent from `from`; StateDigestError when the bytes do not match the header. */
export async function recvState(
  mesh: Mesh,
  from: string,
  key: StateKey,
  opts: { signal: AbortSignal },
): Promise<Float32Array> {
  const ids = { runId: key.runId, step: key.step };
  const h = await mesh.recvTensor(from, { ...ids, microBatch: null, tag: STATE_HEAD_TAG }, opts);
  if (h.data.byteLength !== 12) throw new StateDigestError(`state header of ${h.data.byteLength} bytes`);
  const view = new DataView(h.data.buffer, h.data.byteOffset, 12);
  const [floats, chunks, digest] = [0, 4, 8].map((o) => view.getUint32(o, true)) as [number, number, number];
  if (chunks !== Math.ceil(floats / STATE_CHUNK_FLOATS))
    throw new StateDigestError(`state header: ${chunks} chunks for ${floats} floats`);
  const state = new Float32Array(floats);
  const bytes = bytesOf(state);
  let at = 0;
  for (let i = 0; i < chunks; i++) {
    const c = await mesh.recvTensor(from, { ...ids, microBatch: i, tag: STATE_CHUNK_TAG }, opts);
    if (at + c.data.byteLength > bytes.byteLength)
      throw new StateDigestError(`state chunk ${i} runs past the announced ${floats} floats`);
    bytes.set(c.data, at);
    at += c.data.byteLength;
  }
  const got = fnv1a(bytes);
  if (at !== bytes.byteLength || got !== digest)
    throw new StateDigestError(
      `state from ${from}: ${at} of ${bytes.byteLength} bytes, digest ${got.toString(16)} (announced ${digest.toString(16)})`,
    );
  return state;
}
