import { throwIfAborted } from '@peertrain/base';
import { CompressionError, decodeInto, encodePayload } from '@peertrain/compress';
import type { Compressor, PayloadCompressor } from '@peertrain/compress';
import { ConfigError, ProtocolError } from '@peertrain/protocol';
import type { Mesh, TensorKey } from '@peertrain/transport';
import { MAX_TAG, f32Bytes, f32FromMessage } from './f32.ts';
import type { TrafficStats } from './f32.ts';
import { ringRank } from './ring.ts';
import type { AllReduceStats, RingOptions } from './ring.ts';
import { OpScope } from './scope.ts';
import { PAIRWISE_MAX_PEERS } from './pairwise.ts';

// Direct all-reduce (all-to-all) for small tensors: every peer sends its whole tensor to every other
// peer in one hop and sums the N contributions in rank order 0..N-1, starting from zeros, so every
// peer adds the same float32 values in the same order and ends with the same bits. With fp16 or int8
// each peer encodes its tensor once; every peer, the sender too, sums the decoded payloads (one
// quantization per contribution, where the ring re-quantizes a chunk at each of its N-1 hops).
//
// Why: the ring takes 2(N-1) hops one after another, and a hop between tabs costs far more than its
// bytes when the tensor is small: the message crosses the renderer, the network service and the
// kernel twice, each a process that must be scheduled (2 shared cores here). An int8 DiLoCo round of
// the MLP (101,770 values, 3 tabs) took 117-273 ms in the ring's reduce-scatter alone. Direct sends
// (N-1) L bytes a peer against the ring's 2(N-1)/N L: N/2 times as many, so it is chosen only while
// the extra bytes are worth less than the hops it saves (allReduceAlgorithm).
//
// Tags: one, tagBase (messages are matched per sender, so every pair can share it).

/** Bytes one hop's latency is worth: the extra bytes direct may send per hop it saves. */
export const HOP_WORTH_BYTES = 64 * 1024;

export type AllReduceAlgorithm = 'ring' | 'direct' | 'pairwise';

/**
 * Which algorithm sums a tensor of `payloadBytes` (as sent: 4 per float32 element, 2 for fp16, 1 for
 * int8) over `n` peers. A pure function of both, so every peer of a group picks the same.
 * - direct (1 hop) while its extra bytes over the pairwise exchange, (N-1) L - 2(N-1)/N L, stay
 *   under HOP_WORTH_BYTES (the one hop it saves): always at N = 2 (same bytes, one hop instead of
 *   two); at N = 3 up to 96 KiB, N = 4 up to 42 KiB (the MNIST CNN's 36 KiB of gradients).
 * - pairwise (2 hops, the ring's bytes: pairwise.ts) above that, up to PAIRWISE_MAX_PEERS peers;
 * - the ring (2(N-1) hops) past them.
 */
export function allReduceAlgorithm(n: number, payloadBytes: number): AllReduceAlgorithm {
  if (n <= 2) return 'direct';
  const extra = (n - 1) * payloadBytes - ((2 * (n - 1)) / n) * payloadBytes;
  if (extra <= HOP_WORTH_BYTES) return 'direct';
  return n <= PAIRWISE_MAX_PEERS ? 'pairwise' : 'ring';
}

/** Bytes per element each codec the direct all-reduce carries sends (headers aside). */
export function bytesPerElement(compressor: Compressor | undefined): number | null {
  switch (compressor?.kind ?? 'none') {
    case 'none':
      return 4;
    case 'fp16':
      return 2;
    case 'int8':
      return 1;
    default:
      return null; // top-k and PowerSGD have their own exchanges (compressed.ts)
  }
}

export interface DirectOptions extends RingOptions {
  /** fp16 or int8: each contribution is encoded once; absent: raw float32. */
  codec?: Extract<PayloadCompressor, { kind: 'fp16' | 'int8' }>;
}

/**
 * Sums `data` [L] over every peer of `group` (includes mesh.localId) in place; every peer ends with
 * the same bits. One `allGather` phase interval is reported (onPhase). Rejects with the signal's
 * reason on abort, PeerLostError if a group peer goes away, ProtocolError (a payload of the wrong
 * dtype or size) or CompressionError (naming the sender) on a bad payload, ConfigError on a bad group
 * or tag; on rejection `data` is left as it was and no receive stays pending.
 */
export async function directAllReduce(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: DirectOptions,
): Promise<AllReduceStats> {
  const rank = ringRank(group, mesh.localId);
  const tag = opts.tagBase ?? 0;
  if (!Number.isInteger(tag) || tag < 0 || tag > MAX_TAG) {
    throw new ConfigError('invalid all-reduce options', [`tag ${tag} does not fit the wire's u32 tag`]);
  }
  throwIfAborted(opts.signal);
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const n = group.length;
  if (n === 1) return stats({ bytesSent: 0, bytesReceived: 0 }, 0, 0);
  const key: TensorKey = { runId: opts.runId, step: opts.step, microBatch: opts.microBatch ?? null, tag };
  const others = group.filter((p) => p !== mesh.localId);
  const { codec } = opts;
  // Encoded once; the mesh copies a payload into its frames before sendTensor returns.
  const own = codec ? encodePayload(codec, data) : f32Bytes(data);
  const traffic: TrafficStats = { bytesSent: 0, bytesReceived: 0 };
  const scope = new OpScope(opts.signal);
  scope.watchPeers(mesh, group);
  // Each rank's contribution: float32 values (raw), or its encoded payload (fp16, int8).
  const parts: (Float32Array | Uint8Array | null)[] = group.map((_, r) =>
    r === rank ? (codec ? own : data) : null,
  );
  try {
    await scope.connect(mesh, others);
    const sends = others.map(async (peer) => {
      const msg = codec
        ? { ...key, dtype: 'uint8' as const, shape: [own.byteLength], data: own }
        : { ...key, dtype: 'float32' as const, shape: [data.length], data: own };
      await mesh.sendTensor(peer, msg, { signal: scope.signal });
      traffic.bytesSent += own.byteLength;
    });
    const recvs = group.map(async (peer, r) => {
      if (r === rank) return;
      const msg = await mesh.recvTensor(peer, key, { signal: scope.signal });
      traffic.bytesReceived += msg.data.byteLength;
      if (!codec)
        parts[r] = f32FromMessage(msg, data.length, peer); // checks dtype and size
      else if (msg.dtype === 'uint8') parts[r] = msg.data;
      else
        throw new ProtocolError(
          'bad-dtype',
          `expected a uint8 payload from ${peer} (tag ${tag}), got ${msg.dtype}`,
        );
    });
    await scope.race(Promise.all([...sends, ...recvs]));
    // Summed into a fresh vector, every payload checked before `data` changes: a bad one leaves
    // the caller's tensor as it was.
    const sum = new Float32Array(data.length);
    const term = codec ? new Float32Array(data.length) : null;
    parts.forEach((part, r) => {
      let values = part as Float32Array;
      if (term) {
        decodeFrom(part as Uint8Array, term, codec!.kind, group[r]!, tag);
        values = term;
      }
      for (let i = 0; i < sum.length; i++) sum[i]! += values[i]!;
    });
    data.set(sum);
  } catch (err) {
    scope.fail(err);
    scope.throwIfFailed();
  } finally {
    scope.dispose();
    // The phase's interval ends here, finished or not (as the ring's phases do).
    opts.onPhase?.('allGather', started, now());
  }
  return stats(traffic, now() - started, 1);
}

function stats(traffic: TrafficStats, ms: number, buckets: number): AllReduceStats {
  return { ...traffic, ms, reduceScatterMs: 0, allGatherMs: ms, buckets };
}

/** decodeInto (overwriting `out`), naming the sender and tag in a CompressionError. */
function decodeFrom(
  bytes: Uint8Array,
  out: Float32Array,
  codec: 'fp16' | 'int8',
  from: string,
  tag: number,
): void {
  try {
    decodeInto(bytes, out, { codec });
  } catch (err) {
    if (err instanceof CompressionError)
      throw new CompressionError(err.code, `from ${from} (tag ${tag}): ${err.message}`);
    throw err;
  }
}
