import { mulberry32, throwIfAborted } from '@peertrain/base';
import { CompressionError, decodeInto, encodePayload } from '@peertrain/compress';
import type { Compressor, PayloadCompressor } from '@peertrain/compress';
import { ConfigError, ProtocolError } from '@peertrain/protocol';
import type { Mesh, TensorKey } from '@peertrain/transport';
import type { TrafficStats } from './f32.ts';
import { MAX_TAG } from './f32.ts';
import {
  PHASE_ALL_GATHER,
  PHASE_REDUCE_SCATTER,
  chunkBounds,
  ringAllReduce,
  ringRank,
  ringTag,
  ringTagSpan,
} from './ring.ts';
import type { AllReduceStats, RingOptions, RingPhaseName } from './ring.ts';
import { OpScope } from './scope.ts';

// Compressed all-reduce: SUM semantics like ringAllReduce (the caller divides), and every peer ends
// with bit-identical results, which data parallelism needs (workers must keep identical parameters).
// How each codec composes with the ring:
// - fp16 / int8: the bucketed ring of ring.ts, on encoded chunks. Reduce-scatter: each hop decodes
//   the incoming chunk, adds it into its own (float32) and re-encodes the sum for the next hop, so a
//   chunk is quantized N-1 times on its way (int8's stochastic rounding keeps it unbiased). The owner
//   of the reduced chunk encodes it once and also overwrites its own copy with the decoded value;
//   all-gather forwards the owner's payload unchanged, so everyone decodes the same bytes.
//   Tags: exactly ringAllReduce's (ringTag / ringTagSpan).
// - topk: no ring reduction (sums of sparse vectors densify). Each peer encodes its whole tensor
//   (with its error feedback), the payloads travel around the ring (all-gather, round s = 0..N-2:
//   send the payload of rank r - s, receive that of rank r - s - 1; tag tagBase + s), then every
//   peer sums all N payloads in rank order 0..N-1 into zeros: same bytes, same order, same bits.
//   Each peer sends and receives N-1 payloads: N * f * (5.3/8) of an fp32 ring's bytes at 1%.
// - powersgd: two plain float32 ring all-reduces, of the P factors (plus uncompressed tensors), tags
//   [tagBase, tagBase + spanP), then of the Q factors, from tagBase + spanP (PowerSgd's step API).
// - none: ringAllReduce.
// N = 1: nothing crosses the wire, so nothing is compressed: data is left untouched.

export interface CompressedAllReduceOptions extends RingOptions {
  /** This worker's compression state for this tensor (createCompressor), kept across steps. */
  compressor: Compressor;
  /** Elements per ring bucket (none, fp16, int8; the factor rings of powersgd). Default 65,536. */
  bucketElems?: number;
}

const DEFAULT_BUCKET = 65_536;
const DEFAULT_MAX_IN_FLIGHT = 4;

/** Tags one compressed all-reduce of `length` elements over `n` peers uses, from its tagBase. */
export function compressedTagSpan(
  n: number,
  length: number,
  compressor: Compressor,
  bucketElems = DEFAULT_BUCKET,
): number {
  const buckets = (elems: number): number => Math.ceil(elems / bucketElems);
  switch (compressor.kind) {
    case 'none':
    case 'fp16':
    case 'int8':
      return ringTagSpan(n, buckets(length));
    case 'topk':
      return Math.max(0, n - 1);
    case 'powersgd':
      return (
        ringTagSpan(n, buckets(compressor.power.pLength)) + ringTagSpan(n, buckets(compressor.power.qLength))
      );
  }
}

/**
 * Sums `data` [L] over every peer of `group` (ring order, includes mesh.localId) in place, through
 * `opts.compressor`; every peer ends with the same bits. Errors as ringAllReduce, plus
 * CompressionError (naming the sender) when a peer's payload is malformed; on failure a PowerSGD
 * step is reset (its state stays as before the step), top-k's residual has already taken the tensor.
 */
export async function compressedAllReduce(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: CompressedAllReduceOptions,
): Promise<AllReduceStats> {
  const { compressor } = opts;
  const bucketElems = opts.bucketElems ?? DEFAULT_BUCKET;
  if (!Number.isInteger(bucketElems) || bucketElems < 1) {
    throw new ConfigError('invalid all-reduce options', [
      `bucketElems must be a positive integer, got ${bucketElems}`,
    ]);
  }
  const n = group.length;
  ringRank(group, mesh.localId);
  throwIfAborted(opts.signal);
  const tagBase = opts.tagBase ?? 0;
  const span = compressedTagSpan(n, data.length, compressor, bucketElems);
  if (!Number.isInteger(tagBase) || tagBase < 0 || tagBase + span - 1 > MAX_TAG) {
    throw new ConfigError('invalid all-reduce options', [
      `tags [${tagBase}, ${tagBase + span}) do not fit the wire's u32 tag`,
    ]);
  }
  if (n === 1)
    return { bytesSent: 0, bytesReceived: 0, ms: 0, reduceScatterMs: 0, allGatherMs: 0, buckets: 0 };
  switch (compressor.kind) {
    case 'none':
      return ringAllReduce(mesh, group, data, { ...opts, bucketElems });
    case 'fp16':
    case 'int8':
      return quantizedRing(mesh, group, data, compressor, bucketElems, opts);
    case 'topk':
      return sparseAllGather(mesh, group, data, compressor, opts);
    case 'powersgd': {
      const { power } = compressor;
      try {
        const p = power.computeP(data);
        const first = await ringAllReduce(mesh, group, p, { ...opts, bucketElems });
        power.setReducedP(p);
        const q = power.computeQ();
        const second = await ringAllReduce(mesh, group, q, {
          ...opts,
          bucketElems,
          tagBase: tagBase + ringTagSpan(n, Math.ceil(p.length / bucketElems)),
        });
        power.setReducedQ(q, data);
        return {
          bytesSent: first.bytesSent + second.bytesSent,
          bytesReceived: first.bytesReceived + second.bytesReceived,
          ms: first.ms + second.ms,
          reduceScatterMs: first.reduceScatterMs + second.reduceScatterMs,
          allGatherMs: first.allGatherMs + second.allGatherMs,
          buckets: first.buckets + second.buckets,
        };
      } catch (err) {
        power.reset();
        throw err;
      }
    }
  }
}

/** One operation's links, keys, traffic and phase timing (shared by both compressed forms). */
class Wire {
  readonly traffic: TrafficStats = { bytesSent: 0, bytesReceived: 0 };
  readonly scope: OpScope;
  readonly rank: number;
  readonly left: string;
  readonly right: string;
  readonly #active = [0, 0];
  readonly #since = [0, 0];
  readonly totals = [0, 0];
  readonly now: () => number;
  readonly started: number;
  readonly n: number;
  readonly tagBase: number;

  constructor(
    readonly mesh: Mesh,
    group: readonly string[],
    readonly opts: RingOptions,
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.started = this.now();
    this.tagBase = opts.tagBase ?? 0;
    const n = group.length;
    this.n = n;
    this.rank = ringRank(group, mesh.localId);
    this.right = group[(this.rank + 1) % n] ?? mesh.localId;
    this.left = group[(this.rank + n - 1) % n] ?? mesh.localId;
    this.scope = new OpScope(opts.signal);
    this.scope.watchPeers(mesh, group);
  }

  key(tag: number): TensorKey {
    return { runId: this.opts.runId, step: this.opts.step, microBatch: this.opts.microBatch ?? null, tag };
  }

  async send(tag: number, payload: Uint8Array): Promise<void> {
    const msg = { ...this.key(tag), dtype: 'uint8' as const, shape: [payload.byteLength], data: payload };
    await this.mesh.sendTensor(this.right, msg, { signal: this.scope.signal });
    this.traffic.bytesSent += payload.byteLength;
  }

  async recv(tag: number): Promise<Uint8Array> {
    const msg = await this.mesh.recvTensor(this.left, this.key(tag), { signal: this.scope.signal });
    if (msg.dtype !== 'uint8') {
      throw new ProtocolError(
        'bad-dtype',
        `expected a uint8 payload from ${this.left} (tag ${tag}), got ${msg.dtype}`,
      );
    }
    this.traffic.bytesReceived += msg.data.byteLength;
    return msg.data;
  }

  /** decodeInto, naming the sender and tag in a CompressionError. */
  decode(
    bytes: Uint8Array,
    out: Float32Array,
    add: boolean,
    codec: PayloadCompressor['kind'],
    from: string,
    tag: number,
  ): void {
    try {
      decodeInto(bytes, out, { add, codec });
    } catch (err) {
      if (err instanceof CompressionError)
        throw new CompressionError(err.code, `from ${from} (tag ${tag}): ${err.message}`);
      throw err;
    }
  }

  enter(phase: 0 | 1): void {
    if (this.#active[phase]!++ === 0) this.#since[phase] = this.now();
  }

  exit(phase: 0 | 1): void {
    if (--this.#active[phase]! > 0) return;
    const end = this.now();
    this.totals[phase]! += end - this.#since[phase]!;
    const name: RingPhaseName = phase === PHASE_REDUCE_SCATTER ? 'reduceScatter' : 'allGather';
    this.opts.onPhase?.(name, this.#since[phase]!, end);
  }

  stats(buckets: number): AllReduceStats {
    return {
      ...this.traffic,
      ms: this.now() - this.started,
      reduceScatterMs: this.totals[PHASE_REDUCE_SCATTER]!,
      allGatherMs: this.totals[PHASE_ALL_GATHER]!,
      buckets,
    };
  }
}

/** fp16 / int8 over the bucketed ring (see the file comment). */
async function quantizedRing(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  codec: Extract<PayloadCompressor, { kind: 'fp16' | 'int8' }>,
  bucketElems: number,
  opts: CompressedAllReduceOptions,
): Promise<AllReduceStats> {
  const maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new ConfigError('invalid all-reduce options', [
      `maxInFlight must be a positive integer, got ${maxInFlight}`,
    ]);
  }
  const wire = new Wire(mesh, group, opts);
  const { rank, n, tagBase } = wire;
  const count = Math.ceil(data.length / bucketElems);
  // int8 draws its rounding noise from a generator per (bucket, phase, round), seeded by one draw
  // of the worker's generator per operation: buckets finish in arrival order, so one shared stream
  // would make a run depend on network timing; this way a run is reproducible.
  const opSeed = codec.kind === 'int8' ? Math.floor(codec.random() * 2 ** 32) : 0;
  const encoder = (k: number, phase: number, s: number): PayloadCompressor =>
    codec.kind === 'int8'
      ? {
          ...codec,
          random: mulberry32(
            opSeed ^ Math.imul(2 * k + phase + 1, 0x9e3779b1) ^ Math.imul(s + 1, 0x85ebca6b),
          ),
        }
      : codec;

  const reduceBucket = async (k: number): Promise<void> => {
    const bucket = data.subarray(k * bucketElems, Math.min((k + 1) * bucketElems, data.length));
    const b = chunkBounds(bucket.length, n);
    const chunk = (c: number): Float32Array => bucket.subarray(b[mod(c, n)], b[mod(c, n) + 1]);
    wire.enter(PHASE_REDUCE_SCATTER);
    try {
      for (let s = 0; s < n - 1; s++) {
        const tag = ringTag(n, k, PHASE_REDUCE_SCATTER, s, tagBase);
        const out = chunk(rank - s);
        const into = chunk(rank - s - 1);
        // Encoding copies `out`, so the receive may add into the chunks right away.
        const sent =
          out.length > 0
            ? wire.send(tag, encodePayload(encoder(k, PHASE_REDUCE_SCATTER, s), out))
            : undefined;
        const received =
          into.length > 0
            ? wire.recv(tag).then((bytes) => wire.decode(bytes, into, true, codec.kind, wire.left, tag))
            : undefined;
        await Promise.all([sent, received]);
      }
    } finally {
      wire.exit(PHASE_REDUCE_SCATTER);
    }
    wire.enter(PHASE_ALL_GATHER);
    try {
      // The owner keeps the decoded value of its own payload, as every other peer will.
      const own = chunk(rank + 1);
      let forward = own.length > 0 ? encodePayload(encoder(k, PHASE_ALL_GATHER, 0), own) : undefined;
      if (forward !== undefined) decodeInto(forward, own);
      for (let s = 0; s < n - 1; s++) {
        const tag = ringTag(n, k, PHASE_ALL_GATHER, s, tagBase);
        const into = chunk(rank - s);
        const sent = forward !== undefined ? wire.send(tag, forward) : undefined;
        const received =
          into.length > 0
            ? wire.recv(tag).then((bytes) => {
                wire.decode(bytes, into, false, codec.kind, wire.left, tag);
                return bytes;
              })
            : undefined;
        const [, got] = await Promise.all([sent, received]);
        forward = got; // forwarded unchanged next round (undefined for an empty chunk)
      }
    } finally {
      wire.exit(PHASE_ALL_GATHER);
    }
  };

  try {
    await wire.scope.connect(mesh, [wire.left, wire.right]);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (!wire.scope.failed && next < count) {
        const k = next++;
        await reduceBucket(k).catch((err: unknown) => wire.scope.fail(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxInFlight, count) }, lane));
    wire.scope.throwIfFailed();
  } finally {
    wire.scope.dispose();
  }
  return wire.stats(count);
}

/** topk: all-gather of every peer's sparse payload, summed in rank order (see the file comment). */
async function sparseAllGather(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  codec: Extract<PayloadCompressor, { kind: 'topk' }>,
  opts: CompressedAllReduceOptions,
): Promise<AllReduceStats> {
  const wire = new Wire(mesh, group, opts);
  const { rank, n, tagBase } = wire;
  const payloads: Uint8Array[] = new Array<Uint8Array>(n);
  wire.enter(PHASE_ALL_GATHER);
  try {
    payloads[rank] = encodePayload(codec, data); // inside: a refused input still disposes the scope
    await wire.scope.connect(mesh, [wire.left, wire.right]);
    for (let s = 0; s < n - 1; s++) {
      const tag = tagBase + s;
      const out = payloads[mod(rank - s, n)]!;
      const [, got] = await wire.scope.race(Promise.all([wire.send(tag, out), wire.recv(tag)]));
      payloads[mod(rank - s - 1, n)] = got;
    }
    // Decode every payload (checked before it touches `data`) and sum in rank order.
    const sum = new Float32Array(data.length);
    payloads.forEach((bytes, r) => wire.decode(bytes, sum, true, 'topk', group[r] ?? '?', tagBase));
    data.set(sum);
  } catch (err) {
    wire.scope.fail(err);
    wire.scope.throwIfFailed();
  } finally {
    wire.exit(PHASE_ALL_GATHER);
    wire.scope.dispose();
  }
  return wire.stats(1);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
