// The backend probe's workload and its timing rules. The workload is a forward and backward pass of
// a dense stack (three matmuls per layer, as in training); the rules decide when the timings are
// stable enough and what they say. The rules are pure (timings in, figures out) so they can be tested
// without a backend; `timeWorkload` is the only part that touches tfjs.
import { mulberry32, throwIfAborted } from '@peertrain/base';
import type { ModelSpec } from '@peertrain/protocol';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

/** A dense stack [in, hidden..., out] trained at `batch` rows: what the probe times. */
export interface ProbeWorkload {
  batch: number;
  layers: readonly number[];
}

/**
 * Between the mlp (784-128-10) and the wideMlp (784-1024x4-10), at twice the data-parallel default
 * batch (32) and half the pipeline one (128): 103 MFLOP per pass, about 20 kernels. Enough arithmetic per dispatch that a
 * real GPU shows its speed, little enough that the cpu backend finishes a pass in about 0.1 s here
 * (wasm and cpu probed together in about 1 s in Node on this 2-core machine).
 */
export const DEFAULT_WORKLOAD: ProbeWorkload = { batch: 64, layers: [784, 256, 256, 10] };

/**
 * The probe workload of a model made only of dense and activation layers on a flat input, at the
 * run's `batch`: what a caller that knows the run passes as `workload`. Undefined for any other
 * model (a CNN's convolutions are not a dense stack): use DEFAULT_WORKLOAD then.
 */
export function workloadFor(spec: ModelSpec, batch: number): ProbeWorkload | undefined {
  if (spec.inputShape.length !== 1) return undefined;
  const layers = [spec.inputShape[0]!];
  for (const layer of spec.layers) {
    if (layer.kind === 'dense') layers.push(layer.units);
    else if (layer.kind !== 'relu') return undefined;
  }
  return layers.length > 1 ? { batch, layers } : undefined;
}

/** Floating-point operations of one pass: per layer the forward X·W and the backward dY·Wᵀ and Xᵀ·dY. */
export function workloadFlops(w: ProbeWorkload): number {
  let flops = 0;
  for (let i = 0; i + 1 < w.layers.length; i++) flops += 3 * 2 * w.batch * w.layers[i]! * w.layers[i + 1]!;
  return flops;
}

/** "fwd+bwd 784-256-256-10 @128": how the peer table names the workload. */
export function describeWorkload(w: ProbeWorkload): string {
  return `fwd+bwd ${w.layers.join('-')} @${w.batch}`;
}

/** How long the probe may take per backend and when it has seen enough. */
export interface ProbeLimits {
  /** Timed passes stop once their total passes this (at least one pass is always timed). */
  budgetMs: number;
  /** Stop early with this many samples when the last `minSamples` agree within `tolerance`. */
  minSamples: number;
  maxSamples: number;
  /** (max - min) / median of the last `minSamples` samples that counts as stable. */
  tolerance: number;
}

export const DEFAULT_LIMITS: ProbeLimits = { budgetMs: 300, minSamples: 5, maxSamples: 25, tolerance: 0.1 };

/** True when the last `minSamples` samples agree within `tolerance` of their median. */
export function isStable(samples: readonly number[], limits: ProbeLimits): boolean {
  if (samples.length < limits.minSamples) return false;
  const last = [...samples.slice(-limits.minSamples)].sort((a, b) => a - b);
  const med = median(last);
  return med > 0 && (last.at(-1)! - last[0]!) / med <= limits.tolerance;
}

/** Whether to time another pass, given the samples so far (ms each) and their total. */
export function wantsMoreSamples(samples: readonly number[], limits: ProbeLimits): boolean {
  if (samples.length === 0) return true;
  if (samples.length >= limits.maxSamples) return false;
  const spent = samples.reduce((s, v) => s + v, 0);
  return spent < limits.budgetMs && !isStable(samples, limits);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** What a backend's timed passes say: the median pass and the throughput it implies. */
export interface ProbeTiming {
  /** Median time of one pass, ms. */
  stepMs: number;
  /** workloadFlops / stepMs, GFLOP/s. */
  gflops: number;
  /** The first (untimed) pass: kernel compilation, allocation, upload. */
  warmupMs: number;
  samples: number;
  stable: boolean;
}

/** Figures from raw timings: the median, not the first pass (which compiles) nor the mean (noise). */
export function summarizeTimings(
  warmupMs: number,
  samples: readonly number[],
  flops: number,
  limits: ProbeLimits,
): ProbeTiming {
  const stepMs = median(samples);
  return {
    stepMs,
    gflops: stepMs > 0 ? flops / (stepMs * 1e6) : 0,
    warmupMs,
    samples: samples.length,
    stable: isStable(samples, limits),
  };
}

/** Deterministic values in [-scale, scale). */
function randomValues(count: number, seed: number, scale: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: count }, () => scale * (2 * rand() - 1));
}

/**
 * Times the workload on the active backend: one warm-up pass (two when the first fits the budget)
 * compiles every kernel and is not timed; then timed passes until `wantsMoreSamples` says stop.
 * Each pass ends with a one-number readback, so a GPU's queue has drained before the clock stops,
 * while the readback itself stays negligible. Tensors are disposed on every path.
 */
export async function timeWorkload(
  w: ProbeWorkload,
  opts: { limits?: ProbeLimits; signal?: AbortSignal } = {},
): Promise<ProbeTiming> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const dims = w.layers;
  const x = tf.tensor2d(randomValues(w.batch * dims[0]!, 1, 1), [w.batch, dims[0]!]); // [batch, in]
  const weights = dims.slice(1).map((out, i) =>
    // [in, out], scaled so activations stay O(1) through the stack
    tf.tensor2d(randomValues(dims[i]! * out, 2 + i, 1 / Math.sqrt(dims[i]!)), [dims[i]!, out]),
  );
  const pass = async (): Promise<number> => {
    const t0 = performance.now();
    const done = tf.tidy(() => {
      const acts: Tensor[] = [x]; // acts[i]: [batch, dims[i]]
      for (const wt of weights) acts.push(tf.relu(tf.matMul(acts.at(-1)!, wt)));
      let dy = acts.at(-1)!; // stands in for dLoss/dOut: [batch, out]
      let check = tf.scalar(0);
      for (let i = weights.length - 1; i >= 0; i--) {
        const dw = tf.matMul(acts[i]!, dy, true, false); // Xᵀ·dY: [in, out]
        dy = tf.matMul(dy, weights[i]!, false, true); // dY·Wᵀ: [batch, in]
        check = tf.add(check, tf.reshape(tf.slice(dw, [0, 0], [1, 1]), []));
      }
      return tf.add(check, tf.reshape(tf.slice(dy, [0, 0], [1, 1]), []));
    });
    try {
      await done.data();
    } finally {
      done.dispose();
    }
    return performance.now() - t0;
  };
  try {
    throwIfAborted(opts.signal);
    const warmupMs = await pass();
    throwIfAborted(opts.signal);
    if (warmupMs < limits.budgetMs) await pass();
    const samples: number[] = [];
    while (wantsMoreSamples(samples, limits)) {
      throwIfAborted(opts.signal);
      samples.push(await pass());
    }
    return summarizeTimings(warmupMs, samples, workloadFlops(w), limits);
  } finally {
    x.dispose();
    for (const wt of weights) wt.dispose();
  }
}
