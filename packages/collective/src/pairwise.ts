import { throwIfAborted } from '@peertrain/base';
import { ConfigError } from '@peertrain/protocol';
import type { Mesh, TensorKey } from '@peertrain/transport';
import { MAX_TAG, f32Bytes, f32FromMessage } from './f32.ts';
import type { TrafficStats } from './f32.ts';
import { chunkBounds, ringRank } from './ring.ts';
import type { AllReduceStats, RingOptions } from './ring.ts';
import { OpScope } from './scope.ts';

// Pairwise all-reduce: the ring's two halves, each in one hop. Reduce-scatter: every peer sends
// chunk c of its tensor straight to peer c, and peer c sums the N contributions of its chunk in rank
// order 0..N-1, starting from zeros. All-gather: every peer sends its summed chunk straight to every
// other. Each peer sends 2(N-1)/N L values on average, as in the ring, but waits for 2 hops instead
// of 2(N-1): with tabs that share a machine a hop costs a scheduling of the receiving tab, far more
// than its bytes (a DiLoCo round of the MNIST MLP, 4 tabs of one profile: the ring's 6 hops took
// 15-35 ms against 30-90 ms of compute). Every peer ends with the same bits: each chunk is summed
// once, by its owner, in a fixed order. Needs a link to every peer of the group (dialled on first
// use) and N-1 flows at once, so past PAIRWISE_MAX_PEERS the ring is used (allReduceAlgorithm).
//
// Tags: tagBase for the reduce-scatter, tagBase + 1 for the all-gather (a ring's span is never less).

/** Most peers the pairwise exchange is chosen for: past this, each peer's N-1 links and flows cost more. */
export const PAIRWISE_MAX_PEERS = 16;

/** Tags one pairwise all-reduce uses from its tagBase. */
export const PAIRWISE_TAG_SPAN = 2;

/**
 * Sums `data` [L] over every peer of `group` (includes mesh.localId; the same order on every peer)
 * in place; every peer ends with the same bits. Reports a reduceScatter and an allGather phase
 * interval (onPhase). Rejects with the signal's reason on abort, PeerLostError if a group peer goes
 * away, ProtocolError on a payload of the wrong dtype or size, ConfigError on a bad group or tag; on
 * rejection `data` is left as it was and no receive stays pending.
 */
export async function pairwiseAllReduce(
  mesh: Mesh,
  group: readonly string[],
  data: Float32Array,
  opts: RingOptions,
): Promise<AllReduceStats> {
  const rank = ringRank(group, mesh.localId);
  const tag = opts.tagBase ?? 0;
  if (!Number.isInteger(tag) || tag < 0 || tag + PAIRWISE_TAG_SPAN - 1 > MAX_TAG) {
    throw new ConfigError('invalid all-reduce options', [`tags ${tag}+1 do not fit the wire's u32 tag`]);
  }
  throwIfAborted(opts.signal);
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const n = group.length;
  const traffic: TrafficStats = { bytesSent: 0, bytesReceived: 0 };
  if (n === 1) return { ...traffic, ms: 0, reduceScatterMs: 0, allGatherMs: 0, buckets: 1 };
  const key = (t: number): TensorKey => ({
    runId: opts.runId,
    step: opts.step,
    microBatch: opts.microBatch ?? null,
    tag: t,
  });
  const bounds = chunkBounds(data.length, n);
  const chunk = (c: number): Float32Array => data.subarray(bounds[c], bounds[c + 1]);
  const mine = chunk(rank);
  const others = group.filter((p) => p !== mesh.localId);
  const scope = new OpScope(opts.signal);
  scope.watchPeers(mesh, group);
  const send = async (peer: string, t: number, values: Float32Array): Promise<void> => {
    if (values.length === 0) return;
    const msg = { ...key(t), dtype: 'float32' as const, shape: [values.length], data: f32Bytes(values) };
    await mesh.sendTensor(peer, msg, { signal: scope.signal });
    traffic.bytesSent += values.byteLength;
  };
  const recv = async (peer: string, t: number, length: number): Promise<Float32Array> => {
    if (length === 0) return new Float32Array(0);
    const msg = await mesh.recvTensor(peer, key(t), { signal: scope.signal });
    traffic.bytesReceived += msg.data.byteLength;
    return f32FromMessage(msg, length, peer); // checks dtype and size
  };
  let phaseStart = started;
  let phase: 'reduceScatter' | 'allGather' = 'reduceScatter';
  let reduceScatterMs = 0;
  try {
    await scope.connect(mesh, others);
    // Reduce-scatter: chunk c to peer c; the contributions to this peer's chunk, by rank.
    const parts: Float32Array[] = group.map(() => mine);
    await scope.race(
      Promise.all([
        ...group.map((peer, c) => (c === rank ? undefined : send(peer, tag, chunk(c)))),
        ...group.map(async (peer, r) => {
          if (r !== rank) parts[r] = await recv(peer, tag, mine.length);
        }),
      ]),
    );
    const sum = new Float32Array(mine.length);
    for (const part of parts) for (let i = 0; i < sum.length; i++) sum[i]! += part[i]!;
    const t = now();
    opts.onPhase?.('reduceScatter', phaseStart, t);
    reduceScatterMs = t - phaseStart;
    [phase, phaseStart] = ['allGather', t];
    // All-gather: this peer's sum to every other; every other chunk from its owner. `data` changes
    // only once every chunk is in and checked.
    const gathered: Float32Array[] = group.map(() => sum);
    await scope.race(
      Promise.all([
        ...others.map((peer) => send(peer, tag + 1, sum)),
        ...group.map(async (peer, c) => {
          if (c !== rank) gathered[c] = await recv(peer, tag + 1, bounds[c + 1]! - bounds[c]!);
        }),
      ]),
    );
    gathered.forEach((values, c) => data.set(values, bounds[c]));
  } catch (err) {
    scope.fail(err);
    scope.throwIfFailed();
  } finally {
    scope.dispose();
    opts.onPhase?.(phase, phaseStart, now()); // the phase under way ends here, finished or not
  }
  const ms = now() - started;
  return { ...traffic, ms, reduceScatterMs, allGatherMs: ms - reduceScatterMs, buckets: 1 };
}
