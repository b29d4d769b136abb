import { ConfigError } from '@peertrain/protocol';
import { throwIfAborted } from '@peertrain/base';
import type { Mesh, TensorKey } from '@peertrain/transport';
import { MAX_TAG, recvF32, sendF32 } from './f32.ts';
import type { TrafficStats } from './f32.ts';
import { OpScope } from './scope.ts';

// Synchronous parameter server, colocated: a server peer is also a worker and computes its own
// gradient. The flat parameter vector [P] is cut into shards by key range; each shard has one
// server (by default one shard [0, P) on one server). Per step, every worker pushes the slice of its
// gradient for each shard to that shard's server and pulls the shard's new parameters back; the
// server sums the N gradients in rank order (deterministic), divides by N, applies the update and
// sends the new shard to every other worker.
//
// Tag encoding, per step (runId, step, microBatch = null): shard i's gradient push has tag
// tagBase + 2i, its parameter pull tagBase + 2i + 1. A run of S shards uses tags [tagBase, tagBase + 2S).

/** One key range [start, end) of the flat parameter vector and the peer that serves it. */
export interface PsShard {
  serverId: string;
  start: number;
  end: number;
}

export interface ParameterServerOptions {
  /** Every worker's peer id in rank order (the same on every peer); includes every server. */
  workers: readonly string[];
  /** Full initial parameter vector [P], the same on every peer. Owned by the server from now on and
   *  updated in place: the ranges it serves by `apply`, the others from what their servers send. */
  params: Float32Array;
  /**
   * Applies one update to a served shard, in place: `params` and `meanGrad` are both [end - start]
   * (views of the shard), `range` says where the shard sits in the flat vector (for optimizer state).
   */
  apply: (params: Float32Array, meanGrad: Float32Array, range: { start: number; end: number }) => void;
  runId: number;
  /** Shard layout, sorted and covering [0, P) without gaps, the same on every peer. Default: one
   *  shard [0, P) served by this peer. */
  ranges?: readonly PsShard[];
  /** First tag of the 2 * ranges.length tags the server uses (default 0). */
  tagBase?: number;
}

export interface ParameterServer {
  /** The full parameter vector [P], updated in place by every serveStep. */
  readonly params: Float32Array;
  /** The shard layout (validated). */
  readonly ranges: readonly PsShard[];
  /**
   * Runs this peer's part of step `step`: serves its shards (waits for every worker's gradient,
   * averages in rank order, applies, sends the new parameters) and, when other peers serve other
   * shards, pushes `localGrad` slices to them and pulls their parameters. `localGrad` is this peer's
   * full gradient [P]. Resolves with `params`. Rejects with the signal's reason on abort,
   * PeerLostError when a worker goes away, ProtocolError on a gradient of the wrong size.
   */
  serveStep(step: number, localGrad: Float32Array, opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  /** Payload bytes moved so far, and completed steps. */
  stats(): TrafficStats & { steps: number };
}

/** Validates a shard layout for a vector of `size` and returns it; ConfigError lists every problem. */
export function validateShards(
  ranges: readonly PsShard[],
  size: number,
  workers?: readonly string[],
): PsShard[] {
  const issues: string[] = [];
  if (!Number.isInteger(size) || size < 1)
    issues.push(`parameter count must be a positive integer, got ${size}`);
  if (ranges.length === 0) issues.push('no shards');
  let expected = 0;
  for (const [i, r] of ranges.entries()) {
    if (!Number.isInteger(r.start) || !Number.isInteger(r.end) || r.end <= r.start) {
      issues.push(`shard ${i} [${r.start}, ${r.end}) is empty or not integral`);
    } else if (r.start !== expected) {
      issues.push(
        `shard ${i} starts at ${r.start}, expected ${expected} (shards must be sorted, without gaps)`,
      );
    }
    expected = r.end;
    if (workers !== undefined && !workers.includes(r.serverId)) {
      issues.push(`shard ${i} server ${r.serverId} is not a worker`);
    }
  }
  if (ranges.length > 0 && expected !== size) issues.push(`shards end at ${expected}, expected ${size}`);
  if (2 * ranges.length - 1 > MAX_TAG) issues.push('too many shards for the wire tag');
  if (issues.length > 0) throw new ConfigError('invalid parameter-server shards', issues);
  return ranges.map((r) => ({ ...r }));
}

/**
 * K equal key ranges of [0, size) served by `servers` (K = servers.length) in order; the first
 * size % K ranges are one element longer.
 */
export function evenShards(servers: readonly string[], size: number): PsShard[] {
  const k = servers.length;
  const base = Math.floor(size / k);
  const extra = size % k;
  let start = 0;
  return servers.map((serverId, i) => {
    const end = start + base + (i < extra ? 1 : 0);
    const shard = { serverId, start, end };
    start = end;
    return shard;
  });
}

const gradTag = (tagBase: number, shard: number): number => tagBase + 2 * shard;
const paramTag = (tagBase: number, shard: number): number => tagBase + 2 * shard + 1;

export function createParameterServer(mesh: Mesh, opts: ParameterServerOptions): ParameterServer {
  const { workers, params, apply, runId } = opts;
  const tagBase = opts.tagBase ?? 0;
  const localId = mesh.localId;
  const issues: string[] = [];
  if (new Set(workers).size !== workers.length) issues.push('workers lists a peer twice');
  if (!workers.includes(localId)) issues.push(`workers does not include the server ${localId}`);
  if (!Number.isInteger(tagBase) || tagBase < 0) issues.push(`tagBase must be a non-negative integer`);
  if (issues.length > 0) throw new ConfigError('invalid parameter server', issues);
  const ranges = validateShards(
    opts.ranges ?? [{ serverId: localId, start: 0, end: params.length }],
    params.length,
    workers,
  );
  const served = ranges.flatMap((r, i) => (r.serverId === localId ? [i] : []));
  if (served.length === 0) throw new ConfigError('invalid parameter server', [`${localId} serves no shard`]);
  const others = workers.filter((w) => w !== localId);
  const traffic: TrafficStats = { bytesSent: 0, bytesReceived: 0 };
  let steps = 0;

  /** Gather, average in rank order, apply, scatter: shard `i` of step `step`. */
  const serveShard = async (
    i: number,
    step: number,
    localGrad: Float32Array,
    signal: AbortSignal,
  ): Promise<void> => {
    const { start, end } = ranges[i] ?? { start: 0, end: 0 };
    const len = end - start;
    const key = (tag: number): TensorKey => ({ runId, step, microBatch: null, tag });
    // grads[rank]: [len]
    const grads = await Promise.all(
      workers.map((w) =>
        w === localId
          ? Promise.resolve(localGrad.subarray(start, end))
          : recvF32(mesh, w, key(gradTag(tagBase, i)), len, traffic, signal),
      ),
    );
    const mean = new Float32Array(len); // [len]
    for (const g of grads) for (let j = 0; j < len; j++) mean[j] = (mean[j] ?? 0) + (g[j] ?? 0);
    for (let j = 0; j < len; j++) mean[j] = (mean[j] ?? 0) / workers.length;
    const shard = params.subarray(start, end);
    apply(shard, mean, { start, end });
    await Promise.all(others.map((w) => sendF32(mesh, w, key(paramTag(tagBase, i)), shard, traffic, signal)));
  };

  return {
    params,
    ranges,
    async serveStep(step, localGrad, stepOpts = {}) {
      throwIfAborted(stepOpts.signal);
      if (localGrad.length !== params.length) {
        throw new ConfigError('invalid gradient', [
          `expected ${params.length} values, got ${localGrad.length}`,
        ]);
      }
      const scope = new OpScope(stepOpts.signal);
      scope.watchPeers(mesh, workers);
      const signal = scope.signal;
      try {
        await scope.connect(mesh, workers);
        const remote = ranges.some((r) => r.serverId !== localId)
          ? exchange(mesh, ranges, localGrad, params, { runId, step, tagBase }, traffic, signal)
          : undefined;
        await scope.race(
          Promise.all([...served.map((i) => serveShard(i, step, localGrad, signal)), remote]).catch(
            (err: unknown) => {
              scope.fail(err);
              throw err;
            },
          ),
        );
      } finally {
        scope.dispose();
      }
      steps++;
      return params;
    },
    stats: () => ({ ...traffic, steps }),
  };
}

export interface PsWorkerOptions {
  runId: number;
  step: number;
  signal?: AbortSignal;
  /** Must match the servers' tagBase (default 0). */
  tagBase?: number;
  /** Where to write the new parameters [P] (default: a new array). */
  out?: Float32Array;
  /** Accumulates the payload bytes this step moved. */
  traffic?: TrafficStats;
}

/**
 * A pure worker's step: pushes `grad` [P] (each shard's slice to its server) and pulls the new
 * parameters, resolving with them ([P], in `out` when given). `servers` is the one server's id or
 * the shard layout. Peers that serve a shard use ParameterServer.serveStep instead. Rejects with the
 * signal's reason on abort, PeerLostError when a server goes away, ProtocolError on a bad reply.
 */
export async function psWorkerStep(
  mesh: Mesh,
  servers: string | readonly PsShard[],
  grad: Float32Array,
  opts: PsWorkerOptions,
): Promise<Float32Array> {
  throwIfAborted(opts.signal);
  const ranges = validateShards(
    typeof servers === 'string' ? [{ serverId: servers, start: 0, end: grad.length }] : servers,
    grad.length,
  );
  if (ranges.some((r) => r.serverId === mesh.localId)) {
    throw new ConfigError('invalid parameter-server worker', [
      `${mesh.localId} serves a shard: use ParameterServer.serveStep`,
    ]);
  }
  const out = opts.out ?? new Float32Array(grad.length);
  if (out.length !== grad.length) {
    throw new ConfigError('invalid parameter-server worker', [
      `out has ${out.length} values, expected ${grad.length}`,
    ]);
  }
  const scope = new OpScope(opts.signal);
  scope.watchPeers(
    mesh,
    ranges.map((r) => r.serverId),
  );
  const traffic = opts.traffic ?? { bytesSent: 0, bytesReceived: 0 };
  try {
    await scope.connect(
      mesh,
      ranges.map((r) => r.serverId),
    );
    const done = exchange(
      mesh,
      ranges,
      grad,
      out,
      { ...opts, tagBase: opts.tagBase ?? 0 },
      traffic,
      scope.signal,
    );
    await scope.race(
      done.catch((err: unknown) => {
        scope.fail(err);
        throw err;
      }),
    );
  } finally {
    scope.dispose();
  }
  return out;
}

/** Push-pull with every shard served by another peer: grad [P] slices out, parameter slices into `out` [P]. */
async function exchange(
  mesh: Mesh,
  ranges: readonly PsShard[],
  grad: Float32Array,
  out: Float32Array,
  at: { runId: number; step: number; tagBase: number },
  traffic: TrafficStats,
  signal: AbortSignal,
): Promise<void> {
  const key = (tag: number): TensorKey => ({ runId: at.runId, step: at.step, microBatch: null, tag });
  await Promise.all(
    ranges.map(async ({ serverId, start, end }, i) => {
      if (serverId === mesh.localId) return;
      const pulled = recvF32(mesh, serverId, key(paramTag(at.tagBase, i)), end - start, traffic, signal);
      const pushed = sendF32(
        mesh,
        serverId,
        key(gradTag(at.tagBase, i)),
        grad.subarray(start, end),
        traffic,
        signal,
      );
      const [values] = await Promise.all([pulled, pushed]);
      out.set(values, start);
    }),
  );
}
