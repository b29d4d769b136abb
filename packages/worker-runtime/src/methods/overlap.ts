// Synchronous data parallelism with the all-reduce overlapped with the backward pass (config.overlap;
// PyTorch DDP's bucket hooks). The engine walks the layers last to first and hands each layer's
// gradients out as they are ready (TrainSession.gradients' hooks), yielding to the event loop between
// layers; a gradient bucket's all-reduce starts as soon as every layer it covers is done, so the last
// layers' gradients are on the wire while the first layers' are still being computed.
//
// Same bits as the plain method (allreduce.ts without overlap). Where the exchange takes the direct
// or the pairwise path (collective's allReduceAlgorithm), every element is summed over the workers
// in rank order whatever the chunk it travels in, so the buckets follow the layers: no bucket
// straddles a layer boundary, a layer's range is cut into pieces of at most B = config.bucketElems
// (bucketRanges). The last bucket to be ready then holds only the first layer's gradients, not B
// values of which most were ready a layer or more earlier (the CNN: its first convolution's 80
// values, not 2,048). On the ring the summation order depends on a chunk's position, so there the
// buckets are ringAllReduce's own ([k * B, (k + 1) * B)), whose chunks, tags, order and 1/N scaling
// are exactly those of the one bucketed call. Each bucket k is reduced by allReduceMean on its own
// with tag base ringTagSpan(N, k); only the order in which buckets start differs (last first), and
// buckets are independent.
import { allReduceMean, allReducePath, ringTagSpan } from '@peertrain/collective';
import type { MethodContext } from './types.ts';

/** Buckets reduced at once, as ringAllReduce's default maxInFlight. */
const MAX_IN_FLIGHT = 4;

export interface OverlappedGradients {
  loss: number;
  /** [P] the workers' mean gradient. */
  grads: Float32Array;
  /** Time in forward and backward spans (the rest of the step is communication not hidden). */
  computeMs: number;
}

/**
 * This worker's gradients for `step`, averaged over the ring while the backward pass runs. Spans:
 * one `forward` (batch, forward, loss), one `backward` per layer, and the reduceScatter / allGather
 * intervals of every bucket (`ranges`: overlapBuckets, once per run); on failure the buckets
 * still in flight are aborted before it rejects.
 */
export async function overlappedMeanGradients(
  ctx: MethodContext,
  params: Float32Array,
  step: number,
  ranges: readonly BucketRange[],
): Promise<OverlappedGradients> {
  const { spans } = ctx;
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const grads = new Float32Array(params.length);
  const buckets = new BucketStarter(ranges.length, (k) =>
    reduceBucket(ctx, grads, ranges, k, step, stop.signal).catch((err: unknown) => {
      stop.abort(err); // the other buckets stop at once; the first error is the one reported
      throw err;
    }),
  );
  // The forward and per-layer backward intervals, recorded once the call returns: on a compute
  // thread the hooks say when they ran there (atMs) and the reply when the forward began.
  // The forward's start is null until the reply says it (the call's start where it does not).
  const parts: Part[] = [];
  let forwardDone = false;
  let mark: number | null = null;
  const start = spans.now();
  try {
    const { loss, ran } = await ctx.session.gradients(params, step, {
      signal: stop.signal,
      out: grads,
      hooks: {
        layerStart(_layer, atMs) {
          const at = atMs ?? spans.now();
          if (!forwardDone) parts.push({ kind: 'forward', startMs: null, endMs: at });
          forwardDone = true;
          mark = at;
        },
        layerGrads(_layer, offset, _grads, atMs) {
          parts.push({ kind: 'backward', startMs: mark, endMs: atMs ?? spans.now() });
          // Buckets wholly inside [offset, P) are final: layers are contiguous, walked last to first.
          buckets.readyFrom(firstFrom(ranges, offset));
        },
      },
    });
    buckets.readyFrom(0);
    const computeMs = recordParts(ctx, step, ran?.startMs ?? start, parts);
    await buckets.all();
    return { loss, grads, computeMs };
  } catch (err) {
    stop.abort(err);
    await buckets.settled();
    throw err;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** A forward or a layer's backward: from its start (null: when the call began) to its end, ms. */
interface Part {
  kind: 'forward' | 'backward';
  startMs: number | null;
  endMs: number;
}

/** Records the spans of one gradients call that began computing at `callStartMs`; their total ms. */
function recordParts(ctx: MethodContext, step: number, callStartMs: number, parts: readonly Part[]): number {
  let total = 0;
  for (const { kind, startMs, endMs } of parts) {
    const t0 = startMs ?? callStartMs;
    ctx.spans.record(kind, t0, endMs - t0, { step });
    total += endMs - t0;
  }
  return total;
}

/** A bucket: [start, end) of the flat gradient vector. */
export type BucketRange = readonly [start: number, end: number];

/**
 * The buckets of P values in flat order (the file comment). `layerStarts`: where each layer's
 * parameters begin (layers without parameters repeat the next offset), or null to cut every B
 * values as the ring does.
 */
export function bucketRanges(p: number, b: number, layerStarts: readonly number[] | null): BucketRange[] {
  const cuts = [...new Set([0, ...(layerStarts ?? []).filter((o) => o > 0 && o < p), p])].sort(
    (x, y) => x - y,
  );
  const out: BucketRange[] = [];
  for (let i = 0; i + 1 < cuts.length; i++)
    for (let s = cuts[i]!; s < cuts[i + 1]!; s += b) out.push([s, Math.min(s + b, cuts[i + 1]!)]);
  return out;
}

/** This run's buckets: along the layers unless the exchange takes the ring (file comment). */
export function overlapBuckets(ctx: MethodContext): BucketRange[] {
  const { session, assign } = ctx;
  const { allReduce, bucketElems } = assign.config;
  const p = session.paramCount;
  const path = allReducePath(allReduce, assign.peers.length, p);
  const layers = session.layerCount;
  const starts =
    path === 'ring' || layers === undefined
      ? null
      : Array.from({ length: layers }, (_, i) => session.paramRange({ first: i, end: i + 1 }).offset);
  return bucketRanges(p, bucketElems, starts);
}

/** The first bucket that starts at or after `offset` (ranges.length when none does). */
function firstFrom(ranges: readonly BucketRange[], offset: number): number {
  const k = ranges.findIndex(([start]) => start >= offset);
  return k < 0 ? ranges.length : k;
}

/** Bucket k of `ranges` in `grads`, summed and scaled to the mean, in place. */
function reduceBucket(
  ctx: MethodContext,
  grads: Float32Array,
  ranges: readonly BucketRange[],
  k: number,
  step: number,
  signal: AbortSignal,
): Promise<unknown> {
  const { mesh, assign, spans } = ctx;
  const b = assign.config.bucketElems;
  const [start, end] = ranges[k]!;
  return allReduceMean(mesh, assign.peers, grads.subarray(start, end), {
    runId: assign.runId,
    step,
    bucketElems: b,
    algorithm: assign.config.allReduce,
    tagBase: ringTagSpan(assign.peers.length, k), // bucket k's tags in the one bucketed call
    choiceElems: grads.length, // the path (direct, pairwise or ring) the one call over all of them takes
    signal,
    now: () => spans.now(),
    onPhase: (kind, startMs, endMs) => spans.record(kind, startMs, endMs - startMs, { step }),
  });
}

/**
 * Starts buckets count-1 down to 0 as they become ready, at most MAX_IN_FLIGHT at once, in the same
 * order on every worker (the layers' order), as ringAllReduce's pool does.
 */
class BucketStarter {
  readonly #tasks: Promise<unknown>[] = [];
  readonly #done: Promise<void>;
  #resolve: () => void = () => undefined;
  #reject: (err: unknown) => void = () => undefined;
  #next: number;
  #readyFrom: number;
  #running = 0;
  #finished = 0;
  constructor(
    private readonly count: number,
    private readonly start: (k: number) => Promise<unknown>,
  ) {
    this.#next = count - 1;
    this.#readyFrom = count;
    this.#done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => undefined); // reported by all(); settled() may be all that is awaited
    if (count === 0) this.#resolve();
  }
  /** Every bucket k >= first is final. */
  readyFrom(first: number): void {
    this.#readyFrom = Math.min(this.#readyFrom, first);
    this.#pump();
  }
  /** Resolves when every bucket is reduced (once readyFrom(0) was called); rejects with the first error. */
  all(): Promise<void> {
    return this.#done;
  }
  /** Resolves when no bucket is running any more, whatever the outcome; starts nothing more. */
  async settled(): Promise<void> {
    this.#next = -1;
    await Promise.allSettled(this.#tasks);
  }
  #pump(): void {
    while (this.#running < MAX_IN_FLIGHT && this.#next >= 0 && this.#next >= this.#readyFrom) {
      const task = this.start(this.#next--);
      this.#running++;
      this.#tasks.push(task);
      task.then(
        () => {
          this.#running--;
          if (++this.#finished === this.count) this.#resolve();
          this.#pump();
        },
        (err: unknown) => {
          this.#running--;
          this.#next = -1; // start nothing more
          this.#reject(err);
        },
      );
    }
  }
}
