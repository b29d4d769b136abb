import { ConfigError } from '@peertrain/protocol';
import { throwIfAborted } from '@peertrain/base';
import type { Mesh, TensorKey } from '@peertrain/transport';
import { MAX_TAG, recvF32, sendF32 } from './f32.ts';
import type { TrafficStats } from './f32.ts';
import { OpScope } from './scope.ts';

// Bandwidth-optimal ring all-reduce (Patarasuk & Yuan), bucketed.
//
// The group's peers, in ring order, have ranks 0..N-1; each sends only to its right neighbour
// (rank + 1) and receives only from its left neighbour (rank - 1). A bucket of L elements is cut
// into N chunks (chunkBounds). Reduce-scatter, round s = 0..N-2: rank r sends chunk (r - s) mod N and
// adds the received chunk (r - s - 1) mod N into its own; after N-1 rounds rank r holds the fully
// reduced chunk (r + 1) mod N. All-gather, round s = 0..N-2: rank r sends chunk (r + 1 - s) mod N and
// overwrites its chunk (r - s) mod N with what it receives, so every peer ends with the owner's bits.
// A rank sends every chunk but (r + 1) in reduce-scatter and every chunk but (r + 2) in all-gather:
// 2L - |chunk r+1| - |chunk r+2| elements, exactly 2(N-1)/N * L when N divides L.
//
// Tag encoding: one tag per (bucket, phase, round), dense from tagBase:
//   tag = tagBase + (bucket * 2 + phase) * (N - 1) + round,  phase 0 = reduce-scatter, 1 = all-gather,
//   round in [0, N-2].
// Every message of the operation also carries its runId, step and microBatch, and is matched per
// sender, so the tag only has to be unique on the link left -> right within one operation. An
// operation of B buckets uses tags [tagBase, tagBase + ringTagSpan(N, B)); two collectives sharing a
// step (and micro-batch) must use disjoint tag ranges.

export const PHASE_REDUCE_SCATTER = 0;
export const PHASE_ALL_GATHER = 1;
export type RingPhase = typeof PHASE_REDUCE_SCATTER | typeof PHASE_ALL_GATHER;

/** The tag of (bucket, phase, round) for a ring of `n` peers (see the encoding above). */
export function ringTag(n: number, bucket: number, phase: RingPhase, round: number, tagBase = 0): number {
  return tagBase + (bucket * 2 + phase) * (n - 1) + round;
}

/** How many tags an all-reduce of `buckets` buckets over `n` peers uses, from its tagBase. */
export function ringTagSpan(n: number, buckets: number): number {
  return buckets * 2 * (n - 1);
}

/**
 * Offsets of the `n` chunks of a bucket of `length` elements: chunk c is [b[c], b[c+1]). The first
 * `length % n` chunks hold one element more; when length < n the last chunks are empty (and are
 * neither sent nor received). Every peer computes the same bounds from the same length.
 */
export function chunkBounds(length: number, n: number): number[] {
  const base = Math.floor(length / n);
  const extra = length % n;
  const bounds: number[] = [];
  for (let c = 0; c <= n; c++) bounds.push(c * base + Math.min(c, extra));
  return bounds;
}

/** Elements rank `rank` of `n` sends for one bucket of `length`: 2L - |chunk r+1| - |chunk r+2|. */
export function ringElemsSent(length: number, n: number, rank: number): number {
  if (n < 2) return 0;
  const b = chunkBounds(length, n);
  const size = (c: number): number => (b[c + 1] ?? 0) - (b[c] ?? 0);
  return 2 * length - size((rank + 1) % n) - size((rank + 2) % n);
}

export interface AllReduceStats {
  /** Payload bytes this peer sent (tensor data, not frame headers). */
  bytesSent: number;
  bytesReceived: number;
  /** Wall time of the whole operation. */
  ms: number;
  /** Wall time during which at least one bucket was in reduce-scatter (buckets overlap, so
   *  reduceScatterMs + allGatherMs may exceed ms). */
  reduceScatterMs: number;
  /** Wall time during which at least one bucket was in all-gather. */
  allGatherMs: number;
  buckets: number;
}

export interface RingOptions {
  runId: number;
  step: number;
  /** microBatch field of every message key; null (default) for whole-step gradients. */
  microBatch?: number | null;
  /** First tag of the operation's tag range (default 0; see ringTagSpan). */
  tagBase?: number;
  /** Buckets reduced at once (default 4): bucket k+1 starts while bucket k is still on the wire. */
  maxInFlight?: number;
  signal?: AbortSignal;
  /** Clock for the stats (default performance.now). */
  now?: () => number;
  /**
   * Called each time a phase's busy interval ends: [startMs, endMs) on `now`'s clock during which
   * at least one bucket was in that phase (for timelines; buckets overlap, so the two phases may).
   */
  onPhase?: (phase: RingPhaseName, startMs: number, endMs: number) => void;
}

/** The two halves of a ring all-reduce, by name (span kinds). */
export type RingPhaseName = 'reduceScatter' | 'allGather';

export interface AllReduceOptions extends RingOptions {
  /** Elements per bucket (the last bucket may be shorter). */
  bucketElems: number;
}

const DEFAULT_MAX_IN_FLIGHT = 4;

/**
 * Sums `data` over every peer of `group` in place, with a bucketed ring all-reduce. `group` lists
 * the peer ids in ring order (the same order on every peer) and includes mesh.localId. After it
 * resolves, every peer holds bit-identical sums. Rejects with the signal's reason on abort,
 * PeerLostError if a group peer goes away, ProtocolError if peers disagree on the length, and
 * ConfigError on a bad group or options; on rejection no receive of the operation stays pending.
 */
export async function ringAllReduce(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: AllReduceOptions,
): Promise<AllReduceStats> {
  const { bucketElems } = opts;
  if (!Number.isInteger(bucketElems) || bucketElems < 1) {
    throw new ConfigError('invalid all-reduce options', [
      `bucketElems must be a positive integer, got ${bucketElems}`,
    ]);
  }
  const count = Math.ceil(data.length / bucketElems);
  const tagBase = opts.tagBase ?? 0;
  checkTagRange(tagBase, ringTagSpan(group.length, count));
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const rank = ringRank(group, mesh.localId);
  const maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new ConfigError('invalid all-reduce options', [
      `maxInFlight must be a positive integer, got ${maxInFlight}`,
    ]);
  }
  throwIfAborted(opts.signal);

  const n = group.length;
  const scope = new OpScope(opts.signal);
  const ring: Ring = {
    mesh,
    n,
    rank,
    right: group[(rank + 1) % n] ?? mesh.localId,
    left: group[(rank + n - 1) % n] ?? mesh.localId,
    traffic: { bytesSent: 0, bytesReceived: 0 },
    phases: [
      new PhaseClock(now, (t0, t1) => opts.onPhase?.('reduceScatter', t0, t1)),
      new PhaseClock(now, (t0, t1) => opts.onPhase?.('allGather', t0, t1)),
    ],
    key: (tag) => ({ runId: opts.runId, step: opts.step, microBatch: opts.microBatch ?? null, tag }),
    tagBase,
    signal: scope.signal,
  };
  scope.watchPeers(mesh, group);
  const bucket = (k: number): Float32Array =>
    data.subarray(k * bucketElems, Math.min((k + 1) * bucketElems, data.length));
  try {
    await scope.connect(mesh, [ring.left, ring.right]);
    await runPool(count, maxInFlight, scope, (k) => reduceBucket(ring, k, bucket(k)));
  } finally {
    scope.dispose();
  }
  return {
    ...ring.traffic,
    ms: now() - started,
    reduceScatterMs: ring.phases[PHASE_REDUCE_SCATTER].totalMs,
    allGatherMs: ring.phases[PHASE_ALL_GATHER].totalMs,
    buckets: count,
  };
}

/** This peer's place in one all-reduce: its neighbours, counters and the operation's signal. */
interface Ring {
  mesh: Mesh;
  n: number;
  rank: number;
  right: string;
  left: string;
  traffic: TrafficStats;
  phases: readonly [PhaseClock, PhaseClock];
  key: (tag: number) => TensorKey;
  tagBase: number;
  signal: AbortSignal;
}

/** Reduce-scatter then all-gather of bucket `index` ([L] float32, summed in place). */
async function reduceBucket(ring: Ring, index: number, data: Float32Array): Promise<void> {
  const { mesh, n, rank, traffic, signal } = ring;
  const b = chunkBounds(data.length, n);
  const chunk = (c: number): Float32Array => data.subarray(b[c], b[c + 1]);
  for (const phase of [PHASE_REDUCE_SCATTER, PHASE_ALL_GATHER] as const) {
    const clock = ring.phases[phase];
    clock.enter();
    try {
      for (let s = 0; s < n - 1; s++) {
        const key = ring.key(ringTag(n, index, phase, s, ring.tagBase));
        const out = chunk(mod(phase === PHASE_REDUCE_SCATTER ? rank - s : rank + 1 - s, n));
        const into = chunk(mod(phase === PHASE_REDUCE_SCATTER ? rank - s - 1 : rank - s, n));
        // The send copies `out` before it resolves, so the receive may overwrite chunks freely.
        const sent = out.length > 0 ? sendF32(mesh, ring.right, key, out, traffic, signal) : undefined;
        const received =
          into.length > 0
            ? recvF32(mesh, ring.left, key, into.length, traffic, signal).then((got) => {
                if (phase === PHASE_ALL_GATHER) into.set(got);
                else for (let i = 0; i < into.length; i++) into[i] = (into[i] ?? 0) + (got[i] ?? 0);
              })
            : undefined;
        await Promise.all([sent, received]);
      }
    } finally {
      clock.exit();
    }
  }
}

/** Rank of `localId` in `group`; ConfigError unless the group lists distinct ids including it. */
export function ringRank(group: readonly string[], localId: string): number {
  const issues: string[] = [];
  if (new Set(group).size !== group.length) issues.push('group lists a peer twice');
  const rank = group.indexOf(localId);
  if (rank < 0) issues.push(`group does not include the local peer ${localId}`);
  if (issues.length > 0) throw new ConfigError('invalid collective group', issues);
  return rank;
}

function checkTagRange(tagBase: number, span: number): void {
  if (!Number.isInteger(tagBase) || tagBase < 0 || tagBase + span - 1 > MAX_TAG) {
    throw new ConfigError('invalid all-reduce options', [
      `tags [${tagBase}, ${tagBase + span}) do not fit the wire's u32 tag (tagBase too large or too many buckets)`,
    ]);
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** Wall time during which at least one bucket is inside a phase (a union of intervals). */
class PhaseClock {
  totalMs = 0;
  #active = 0;
  #since = 0;
  constructor(
    private readonly now: () => number,
    private readonly onInterval: (startMs: number, endMs: number) => void,
  ) {}
  enter(): void {
    if (this.#active++ === 0) this.#since = this.now();
  }
  exit(): void {
    if (--this.#active === 0) {
      const end = this.now();
      this.totalMs += end - this.#since;
      this.onInterval(this.#since, end);
    }
  }
}

/**
 * Runs `run(0..count-1)`, at most `limit` at once. The first failure (of a run, or the scope's abort)
 * fails the scope and stops starting new runs; waits for the runs already started (they end
 * promptly: they share the scope's signal) and rethrows.
 */
async function runPool(
  count: number,
  limit: number,
  scope: OpScope,
  run: (index: number) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  for (let k = 0; k < count && !scope.failed; k++) {
    while (running.size >= limit && !scope.failed) await Promise.race(running);
    if (scope.failed) break;
    const task: Promise<void> = Promise.resolve()
      .then(() => run(k))
      .catch((err: unknown) => scope.fail(err))
      .finally(() => running.delete(task));
    running.add(task);
  }
  await Promise.all(running);
  scope.throwIfFailed();
}
