import { relativeError } from '@peertrain/compress';
import type { CompressionSpec } from '@peertrain/compress';
import { ConfigError, PeerLostError } from '@peertrain/protocol';
import { AbortError, throwIfAborted } from '@peertrain/base';
import type { Mesh, TensorKey } from '@peertrain/transport';
import type { TrafficStats } from './f32.ts';
import { validateShards } from './ps.ts';
import type { PsShard } from './ps.ts';
import {
  PUSH_HEAD,
  REPLY_HEAD,
  decodeBody,
  encodeBody,
  psCodec,
  readHead,
  u8,
  withHead,
} from './ps-async-wire.ts';
import type { PsCodec } from './ps-async-wire.ts';
import { OpScope } from './scope.ts';

// Asynchronous parameter server with bounded staleness, colocated and sharded by key range (the
// layout of ps.ts). Every peer is a worker; the peers named in `ranges` also serve their shards.
//
// Server, per served shard: a version counter (pushes applied so far). Each push is applied as it
// arrives, on its own: apply(shard, grad / N) (the standard asynchronous SGD rule: N pushes of one
// round move the parameters as far as one synchronous step on the mean gradient, so the learning
// rate keeps its meaning; with N = 1 it IS the synchronous step). The server then replies to that
// worker alone with the shard's new parameters, the new version and the push's staleness: the
// versions applied between the parameters the gradient was computed on and its own application
// (the delay tau of async SGD). No worker ever waits for another.
//
// Worker, per step: computes on its copy of the parameters, pushes each shard's slice to its server
// and goes on without waiting for the replies, as long as at most S of its own pushes are unanswered
// (S = staleness): its copy then lacks at most S of its own updates (and what others pushed
// meanwhile). Replies are applied in push order at the start of the next compute, never while one
// runs. A slow worker therefore slows only itself.
//
// Compression (`compression`, not powersgd): pushes are encoded with the worker's compressor (top-k
// keeps its error feedback, so nothing is dropped). Pulls are the encoded DIFFERENCE between the
// shard's parameters and the server's copy of what that worker holds (its view); server and worker
// both add the same decoded bytes, so the view equals the worker's copy bit for bit and the error
// never accumulates: the worker's copy differs from the server's parameters by one pull's
// compression error. The final parameters go raw. Under 'none' a reply is the shard itself.
//
// Tags (runId, step = the worker's step, microBatch null): shard i's push tagBase + 3i, reply
// tagBase + 3i + 1, final parameters (step = totalSteps) tagBase + 3i + 2.

export interface AsyncPsOptions {
  /** Every worker's peer id in rank order (the same on every peer). */
  workers: readonly string[];
  /** Shard layout (validated as in ps.ts); default one shard [0, P) served by workers[0]. */
  ranges?: readonly PsShard[];
  /** Initial parameters [P], the same on every peer: this worker's copy, updated in place by replies. */
  params: Float32Array;
  runId: number;
  /** Most own pushes a worker may leave unanswered while it computes on (S >= 0). */
  staleness: number;
  /** Steps every worker takes: a server expects exactly this many pushes from each. */
  totalSteps: number;
  /** Server side: applies one already scaled update (grad / N) to a served shard, in place. */
  apply: (params: Float32Array, grad: Float32Array, range: { start: number; end: number }) => void;
  /** Pushes and pulls (default none); powersgd is a ConfigError. */
  compression?: CompressionSpec;
  /** Seed of int8's stochastic rounding: differ per worker (default: rank). */
  seed?: number;
  /** Who collects the final parameters from the servers (default workers[0]). */
  collector?: string;
  /**
   * Elastic runs: a worker that serves nothing and is not the collector may leave. Its link closing
   * ends its pushes (the servers stop expecting the rest, nothing fails); a server or the collector
   * leaving still fails every peer with PeerLostError. Updates stay scaled by 1 / workers.length.
   */
  workersMayLeave?: boolean;
  tagBase?: number;
  /** The run's lifetime: the server loops stop when it aborts (and on dispose). */
  signal?: AbortSignal;
}

/** One peer of an asynchronous parameter server: a worker, and the server of its shards. */
export interface AsyncPsPeer {
  /** This worker's copy of the parameters [P]. */
  readonly params: Float32Array;
  readonly ranges: readonly PsShard[];
  /**
   * Waits until at most S pushes are unanswered, then applies every reply that has arrived (in push
   * order): `params` is ready to compute on. Rejects with the first failure of the peer.
   */
  ready(opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  /** Pushes step `step`'s gradient [P] (steps 0, 1, ... in order); resolves once it is sent. */
  push(step: number, grad: Float32Array, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Waits for every unanswered push and applies its reply. */
  drain(opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  /**
   * On the collector: waits until every server applied every push, and copies the servers'
   * parameters into `params` (exact). Elsewhere: drain().
   */
  final(opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  /** Largest staleness among the replies applied since the last call (null when none was). */
  takeStaleness(): number | null;
  /** This peer's server copy of the parameters [P]: the served ranges are current (tests, reports). */
  readonly serverParams: Float32Array;
  /**
   * Pushes this peer's servers applied, and `pullError`: the largest relative distance
   * ||shard - view|| / ||shard|| right after a compressed pull (what a worker's copy differs by
   * from the server's parameters at that moment: the compression error; 0 under 'none').
   */
  stats(): TrafficStats & { pushesApplied: number; pullError: number };
  /** The server's copy of what `worker` holds of served shard `shard` (compressed pulls only). */
  viewOf(shard: number, worker: string): Float32Array | null;
  /**
   * workersMayLeave: `worker` is out (the coordinator dropped it; its link may still be open). This
   * peer's servers stop waiting for its pushes. Ignored for a server or the collector.
   */
  forget(worker: string): void;
  /** Stops the server loops and every pending receive. */
  dispose(): void;
}

interface Reply {
  shard: number;
  version: number;
  staleness: number;
  body: Uint8Array;
  /** Encoded with the peer's codec, or raw (a local shard, or the 'none' codec). */
  raw: boolean;
}

interface Pending {
  step: number;
  replies: Promise<Reply[]>;
  settled: Reply[] | null;
}

const pushTag = (base: number, i: number): number => base + 3 * i;
const replyTag = (base: number, i: number): number => base + 3 * i + 1;
const finalTag = (base: number, i: number): number => base + 3 * i + 2;

function checkOptions(mesh: Mesh, o: AsyncPsOptions): PsShard[] {
  const issues: string[] = [];
  if (new Set(o.workers).size !== o.workers.length) issues.push('workers lists a peer twice');
  if (!o.workers.includes(mesh.localId)) issues.push(`workers does not include ${mesh.localId}`);
  if (!Number.isInteger(o.staleness) || o.staleness < 0) issues.push(`staleness ${o.staleness} < 0`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 0) issues.push(`totalSteps ${o.totalSteps}`);
  if (o.collector !== undefined && !o.workers.includes(o.collector)) issues.push('collector is not a worker');
  if (issues.length > 0) throw new ConfigError('invalid asynchronous parameter server', issues);
  const first = o.workers[0] ?? mesh.localId;
  return validateShards(
    o.ranges ?? [{ serverId: first, start: 0, end: o.params.length }],
    o.params.length,
    o.workers,
  );
}

/** What the server and the worker halves of one peer share. */
interface Shared {
  mesh: Mesh;
  opts: AsyncPsOptions;
  ranges: PsShard[];
  spec: CompressionSpec;
  /** The codec on the wire between peers (none or a payload codec). */
  wireKind: PsCodec['kind'];
  collector: string;
  tagBase: number;
  key: (step: number, tag: number) => TensorKey;
  traffic: TrafficStats;
  /** The peer's lifetime: its first failure aborts every loop and pending receive. */
  scope: OpScope;
  /** Workers whose leaving ends only their own pushes (workersMayLeave: neither servers nor the collector). */
  mayLeave: ReadonlySet<string>;
  /** Per worker that may leave: aborted (with PeerLostError) when it is forgotten. */
  leaving: Map<string, AbortController>;
}

interface ServerHalf {
  served: number[];
  serverParams: Float32Array;
  allApplied: Promise<void>;
  /** A worker left with `count` pushes to a served shard still owed: they are no longer expected. */
  forgo(count: number): void;
  /** Applies one push (grad [len], scaled here) to served shard i; the reply for `from`. */
  applyPush(i: number, from: string, paramsVersion: number, grad: Float32Array): Reply;
  counts(): { pushesApplied: number; pullError: number };
  viewOf(shard: number, worker: string): Float32Array | null;
}

function serverHalf(c: Shared): ServerHalf {
  const { ranges, spec, opts } = c;
  const { workers, apply } = opts;
  const localId = c.mesh.localId;
  const served = ranges.flatMap((r, i) => (r.serverId === localId ? [i] : []));
  const serverParams = opts.params.slice();
  const version = ranges.map(() => 0);
  let pushesApplied = 0;
  let pullError = 0;
  let expected = served.length * workers.length * opts.totalSteps;
  const allApplied = deferred();
  if (expected === 0) allApplied.resolve();
  // views.get(shard)?.get(worker): what that worker holds of the shard (compressed pulls only).
  const views = new Map<number, Map<string, { view: Float32Array; codec: PsCodec }>>();
  for (const i of served) {
    const { start, end } = ranges[i]!;
    const perWorker = new Map<string, { view: Float32Array; codec: PsCodec }>();
    for (const [rank, w] of workers.entries()) {
      if (w === localId || spec.kind === 'none') continue;
      // Seeds of the pull codecs: apart from every worker's push seed.
      const codec = psCodec(spec, end - start, 1e6 + rank);
      perWorker.set(w, { view: opts.params.slice(start, end), codec });
    }
    views.set(i, perWorker);
  }
  const applyPush = (i: number, from: string, paramsVersion: number, grad: Float32Array): Reply => {
    const { start, end } = ranges[i]!;
    const staleness = Math.max(0, version[i]! - paramsVersion);
    const inv = 1 / workers.length;
    for (let j = 0; j < grad.length; j++) grad[j] = grad[j]! * inv;
    const shard = serverParams.subarray(start, end);
    apply(shard, grad, { start, end });
    const v = (version[i] = version[i]! + 1);
    pushesApplied++;
    if (pushesApplied === expected) allApplied.resolve();
    const state = views.get(i)?.get(from);
    if (!state || state.codec.kind === 'none') {
      return { shard: i, version: v, staleness, body: encodeBody({ kind: 'none' }, shard), raw: true };
    }
    // [len]: what the worker lacks; the pull codec keeps no residual of its own (the view does).
    const delta = shard.map((p, j) => p - state.view[j]!);
    if (state.codec.kind === 'topk') state.codec.feedback.residual.fill(0);
    const body = encodeBody(state.codec, delta);
    decodeBody(state.codec.kind, body, state.view, true, localId);
    pullError = Math.max(pullError, relativeError(state.view, shard));
    return { shard: i, version: v, staleness, body, raw: false };
  };
  return {
    served,
    serverParams,
    allApplied: allApplied.promise,
    forgo(count) {
      expected -= count;
      if (pushesApplied >= expected) allApplied.resolve();
    },
    applyPush,
    counts: () => ({ pushesApplied, pullError }),
    viewOf: (shard, worker) => views.get(shard)?.get(worker)?.view ?? null,
  };
}

/** Serves every other worker's pushes to this peer's shards; then sends the collector the result. */
async function serve(c: Shared, server: ServerHalf): Promise<void> {
  const { mesh, ranges, key, tagBase, traffic, opts } = c;
  const localId = mesh.localId;
  if (server.served.length === 0) return;
  const signal = c.scope.signal;
  await c.scope.connect(mesh, opts.workers);
  // A worker that may leave (workersMayLeave) and did: the pushes it still owed are not expected.
  const left = (from: string, err: unknown, owed: number): boolean => {
    if (!(err instanceof PeerLostError) || !c.mayLeave.has(from) || signal.aborted) return false;
    server.forgo(owed);
    return true;
  };
  const serveWorker = async (i: number, from: string): Promise<void> => {
    const { start, end } = ranges[i]!;
    const forgotten = c.leaving.get(from)?.signal;
    const until = forgotten ? AbortSignal.any([signal, forgotten]) : signal;
    for (let step = 0; step < opts.totalSteps; step++) {
      let msg: Awaited<ReturnType<Mesh['recvTensor']>>;
      try {
        msg = await mesh.recvTensor(from, key(step, pushTag(tagBase, i)), { signal: until });
      } catch (err) {
        if (left(from, err, opts.totalSteps - step)) return;
        throw err;
      }
      traffic.bytesReceived += msg.data.byteLength;
      const [paramsVersion = 0] = readHead(msg, 1, from);
      const grad = new Float32Array(end - start); // [len]
      decodeBody(c.wireKind, msg.data.subarray(PUSH_HEAD), grad, false, from);
      const r = server.applyPush(i, from, paramsVersion, grad);
      const bytes = withHead([r.version, r.staleness], r.body);
      try {
        await mesh.sendTensor(from, { ...key(step, replyTag(tagBase, i)), ...u8(bytes) }, { signal: until });
      } catch (err) {
        if (left(from, err, opts.totalSteps - step - 1)) return;
        throw err;
      }
      traffic.bytesSent += bytes.byteLength;
    }
  };
  const others = opts.workers.filter((w) => w !== localId);
  await Promise.all(server.served.flatMap((i) => others.map((w) => serveWorker(i, w))));
  await server.allApplied;
  if (c.collector === localId) return;
  for (const i of server.served) {
    const { start, end } = ranges[i]!;
    const bytes = encodeBody({ kind: 'none' }, server.serverParams.subarray(start, end));
    const k = key(opts.totalSteps, finalTag(tagBase, i));
    await mesh.sendTensor(c.collector, { ...k, ...u8(bytes) }, { signal });
    traffic.bytesSent += bytes.byteLength;
  }
}

/** The worker's side: its copy of the parameters, its pushes in flight, the replies. */
class WorkerHalf {
  readonly #c: Shared;
  readonly #server: ServerHalf;
  readonly #pushCodecs: PsCodec[];
  /** Version of each shard in `params`. */
  readonly #held: number[];
  readonly #pending: Pending[] = [];
  #nextStep = 0;
  #stale: number | null = null;

  constructor(c: Shared, server: ServerHalf) {
    this.#c = c;
    this.#server = server;
    const seed = c.opts.seed ?? c.opts.workers.indexOf(c.mesh.localId);
    this.#pushCodecs = c.ranges.map((r): PsCodec =>
      r.serverId === c.mesh.localId ? { kind: 'none' } : psCodec(c.spec, r.end - r.start, seed),
    );
    this.#held = c.ranges.map(() => 0);
  }

  takeStaleness(): number | null {
    const s = this.#stale;
    this.#stale = null;
    return s;
  }

  async push(step: number, grad: Float32Array, signal?: AbortSignal): Promise<void> {
    const { mesh, ranges, key, tagBase, scope, traffic, opts } = this.#c;
    throwIfAborted(signal);
    scope.throwIfFailed();
    if (step !== this.#nextStep) {
      throw new ConfigError('invalid push', [`expected step ${this.#nextStep}, got ${step}`]);
    }
    if (grad.length !== opts.params.length) {
      throw new ConfigError('invalid gradient', [
        `expected ${opts.params.length} values, got ${grad.length}`,
      ]);
    }
    this.#nextStep++;
    await scope.race(scope.connect(mesh, [...new Set(ranges.map((r) => r.serverId))]));
    const sends: Promise<void>[] = [];
    const replies: Promise<Reply>[] = [];
    for (const [i, { serverId, start, end }] of ranges.entries()) {
      const slice = grad.subarray(start, end);
      if (serverId === mesh.localId) {
        replies.push(Promise.resolve(this.#server.applyPush(i, serverId, this.#held[i]!, slice.slice())));
        continue;
      }
      const bytes = withHead([this.#held[i]!], encodeBody(this.#pushCodecs[i]!, slice));
      const k = key(step, pushTag(tagBase, i));
      sends.push(mesh.sendTensor(serverId, { ...k, ...u8(bytes) }, { signal: scope.signal }));
      traffic.bytesSent += bytes.byteLength;
      replies.push(this.#receiveReply(step, i));
    }
    const entry: Pending = { step, replies: Promise.all(replies), settled: null };
    entry.replies.then(
      (r) => void (entry.settled = r),
      (err: unknown) => scope.fail(err),
    );
    this.#pending.push(entry);
    await scope.race(Promise.all(sends));
  }

  /** Applies the settled prefix of the pending pushes, then waits (oldest first) until at most `keep` are left. */
  async settle(keep: number, signal?: AbortSignal): Promise<Float32Array> {
    const { scope, opts } = this.#c;
    throwIfAborted(signal);
    scope.throwIfFailed();
    const op = new OpScope(signal);
    try {
      while (this.#pending.length > 0) {
        const head = this.#pending[0]!;
        if (head.settled === null && this.#pending.length <= keep) break;
        this.#apply(head.settled ?? (await scope.race(op.race(head.replies))));
        this.#pending.shift();
      }
    } finally {
      op.dispose();
    }
    return opts.params;
  }

  /** On the collector: every server's final parameters, exact, into `params`. */
  async collect(signal?: AbortSignal): Promise<void> {
    const { mesh, ranges, key, tagBase, scope, traffic, opts } = this.#c;
    const op = new OpScope(signal);
    try {
      await scope.race(op.race(this.#server.allApplied));
      for (const [i, { serverId, start, end }] of ranges.entries()) {
        const into = opts.params.subarray(start, end);
        if (serverId === mesh.localId) {
          into.set(this.#server.serverParams.subarray(start, end));
          continue;
        }
        const k = key(opts.totalSteps, finalTag(tagBase, i));
        const msg = await scope.race(mesh.recvTensor(serverId, k, { signal: op.signal }));
        traffic.bytesReceived += msg.data.byteLength;
        decodeBody('none', msg.data, into, false, serverId);
      }
    } finally {
      op.dispose();
    }
  }

  async #receiveReply(step: number, i: number): Promise<Reply> {
    const { mesh, ranges, key, tagBase, scope, traffic } = this.#c;
    const from = ranges[i]!.serverId;
    const msg = await mesh.recvTensor(from, key(step, replyTag(tagBase, i)), { signal: scope.signal });
    traffic.bytesReceived += msg.data.byteLength;
    const [version = 0, staleness = 0] = readHead(msg, 2, from);
    const body = msg.data.subarray(REPLY_HEAD);
    return { shard: i, version, staleness, body, raw: this.#pushCodecs[i]!.kind === 'none' };
  }

  #apply(replies: readonly Reply[]): void {
    for (const r of replies) {
      const { start, end, serverId } = this.#c.ranges[r.shard]!;
      const kind = r.raw ? 'none' : this.#pushCodecs[r.shard]!.kind;
      decodeBody(kind, r.body, this.#c.opts.params.subarray(start, end), !r.raw, serverId);
      this.#held[r.shard] = r.version;
      this.#stale = Math.max(this.#stale ?? 0, r.staleness);
    }
  }
}

export function createAsyncParameterServer(mesh: Mesh, opts: AsyncPsOptions): AsyncPsPeer {
  const ranges = checkOptions(mesh, opts);
  const spec = opts.compression ?? { kind: 'none' };
  const { runId } = opts;
  const c: Shared = {
    mesh,
    opts,
    ranges,
    spec,
    wireKind: psCodec(spec, 1, 0).kind, // ConfigError for powersgd, before anything starts
    collector: opts.collector ?? opts.workers[0]!,
    tagBase: opts.tagBase ?? 0,
    key: (step, tag) => ({ runId, step, microBatch: null, tag }),
    traffic: { bytesSent: 0, bytesReceived: 0 },
    scope: new OpScope(opts.signal),
    mayLeave: new Set(),
    leaving: new Map(),
  };
  if (opts.workersMayLeave === true) {
    const critical = new Set([c.collector, ...ranges.map((r) => r.serverId)]);
    c.mayLeave = new Set(opts.workers.filter((w) => !critical.has(w)));
    for (const w of c.mayLeave) c.leaving.set(w, new AbortController());
  }
  const server = serverHalf(c);
  const worker = new WorkerHalf(c, server);
  c.scope.watchPeers(
    mesh,
    opts.workers.filter((w) => !c.mayLeave.has(w)),
  );
  serve(c, server).catch((err: unknown) => c.scope.fail(err));
  return {
    params: opts.params,
    ranges,
    serverParams: server.serverParams,
    ready: (o = {}) => worker.settle(opts.staleness, o.signal),
    push: (step, grad, o = {}) => worker.push(step, grad, o.signal),
    drain: (o = {}) => worker.settle(0, o.signal),
    async final(o = {}) {
      await worker.settle(0, o.signal);
      if (c.collector === mesh.localId) await worker.collect(o.signal);
      return opts.params;
    },
    takeStaleness: () => worker.takeStaleness(),
    forget: (w) => c.leaving.get(w)?.abort(new PeerLostError(w, 'dropped by the coordinator')),
    stats: () => ({ ...c.traffic, ...server.counts() }),
    viewOf: (shard, worker) => server.viewOf(shard, worker),
    dispose() {
      c.scope.fail(new AbortError('parameter server disposed'));
      c.scope.dispose();
    },
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
