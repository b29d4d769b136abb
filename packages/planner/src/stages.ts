import { ConfigError, partitionIssues } from '@peertrain/protocol';
import type { StageRange } from '@peertrain/protocol';

// Stage planning for pipeline parallelism: cut a model's layers into P contiguous ranges, one per
// device in pipeline order, so that the slowest stage is as fast as possible and every stage fits
// its device's memory. Pure: plain numbers in, a plan out.

/** One layer as measured on the reference device. */
export interface LayerProfile {
  /** Forward + backward time of one micro-batch on the reference device, ms. */
  readonly costMs: number;
  /** Parameter bytes (fp32 weights). Stored x3: weights, gradients, optimizer state. */
  readonly paramBytes: number;
  /** Activation bytes one micro-batch keeps alive until its backward. */
  readonly activationBytes: number;
  /**
   * Bytes of the layer's output for one micro-batch: what crosses the link when a stage ends after
   * this layer (forward), and again as its gradient (backward). Default 0 (communication free).
   */
  readonly outputBytes?: number | undefined;
}

/** One pipeline device as measured at join. */
export interface StageDevice {
  readonly id: string;
  /** Measured matmul speed; a device's time is reference time x (referenceGflops / gflops). */
  readonly gflops: number;
  readonly memoryBytes: number;
}

export interface StagePlanOptions {
  /** Micro-batches per step, M. Default: P (the fewest that fill a 1F1B pipeline). */
  readonly microBatches?: number;
  /**
   * GFLOP/s of the device the layer costs were measured on. Default: the fastest device's, i.e.
   * costs are taken as measured on the fastest device. It scales the predicted times only, never
   * where the cuts go.
   */
  readonly referenceGflops?: number;
  /**
   * Link speed between neighbouring stages, bytes per ms. A stage then also pays the time to move
   * its input and output activations and their gradients: cuts go where activations are small.
   * Default: Infinity (communication free).
   */
  readonly bytesPerMs?: number;
}

/** A half-open range of layers, [first, end) (protocol's StageRange, as the plan messages carry it). */
export type { StageRange };

export interface PlannedStage extends StageRange {
  readonly device: string;
  /** Forward + backward time of one micro-batch on this device, ms. */
  readonly predictedMs: number;
  /** Parameters x 3 + activations x min(P, M) micro-batches in flight. */
  readonly memoryBytes: number;
}

export interface StagePlan {
  readonly stages: readonly PlannedStage[];
  /** The slowest stage's predictedMs. */
  readonly bottleneckMs: number;
  /** (M + P - 1) x bottleneck: one GPipe / 1F1B step with the pipeline fill and drain. */
  readonly predictedStepMs: number;
}

/** Details of a device that cannot hold what it would have to. */
export interface PlanErrorDetail {
  readonly device: string;
  readonly first: number;
  readonly end: number;
  readonly needBytes: number;
  readonly haveBytes: number;
}

/** No plan satisfies the constraints (too few layers, or memory). `detail` names the culprit. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
  constructor(
    message: string,
    readonly detail: PlanErrorDetail | null = null,
  ) {
    super(message);
  }
}

/** Weights + gradients + optimizer state (Adam's two moments are counted as one state copy). */
const PARAM_COPIES = 3;

interface Prepared {
  readonly P: number;
  readonly M: number;
  readonly inFlight: number;
  readonly referenceGflops: number;
  /** Prefix sums over layers, length n + 1. */
  readonly cost: Float64Array;
  readonly params: Float64Array;
  readonly acts: Float64Array;
  /** outputBytes of each layer. */
  readonly out: readonly number[];
  readonly bytesPerMs: number;
}

function prepare(
  layers: readonly LayerProfile[],
  devices: readonly StageDevice[],
  opts: StagePlanOptions,
): Prepared {
  const issues: string[] = [];
  const nonNegative = (x: number): boolean => Number.isFinite(x) && x >= 0;
  layers.forEach((l, i) => {
    if (!nonNegative(l.costMs)) issues.push(`layer ${i}: costMs ${l.costMs} is not a finite number >= 0`);
    if (!nonNegative(l.paramBytes)) issues.push(`layer ${i}: paramBytes ${l.paramBytes} is not >= 0`);
    if (!nonNegative(l.activationBytes))
      issues.push(`layer ${i}: activationBytes ${l.activationBytes} is not >= 0`);
  });
  const ids = new Set<string>();
  for (const d of devices) {
    if (!(Number.isFinite(d.gflops) && d.gflops > 0))
      issues.push(`device ${d.id}: gflops ${d.gflops} is not > 0`);
    if (!nonNegative(d.memoryBytes)) issues.push(`device ${d.id}: memoryBytes ${d.memoryBytes} is not >= 0`);
    if (ids.has(d.id)) issues.push(`device ${d.id} appears twice`);
    ids.add(d.id);
  }
  if (devices.length === 0) issues.push('no devices');
  layers.forEach((l, i) => {
    if (l.outputBytes !== undefined && !nonNegative(l.outputBytes))
      issues.push(`layer ${i}: outputBytes ${l.outputBytes} is not >= 0`);
  });
  const bytesPerMs = opts.bytesPerMs ?? Infinity;
  if (!(bytesPerMs > 0)) issues.push(`bytesPerMs ${bytesPerMs} is not > 0`);
  const P = devices.length;
  const M = opts.microBatches ?? Math.max(P, 1);
  if (!Number.isInteger(M) || M < 1) issues.push(`microBatches must be an integer >= 1, got ${M}`);
  const referenceGflops = opts.referenceGflops ?? Math.max(...devices.map((d) => d.gflops));
  if (!(Number.isFinite(referenceGflops) && referenceGflops > 0))
    issues.push(`referenceGflops ${referenceGflops} is not > 0`);
  if (issues.length > 0) throw new ConfigError('invalid stage planning input', issues);
  if (P > layers.length)
    throw new PlanError(`${P} devices cannot each get a non-empty stage of ${layers.length} layers`);

  const n = layers.length;
  const cost = new Float64Array(n + 1);
  const params = new Float64Array(n + 1);
  const acts = new Float64Array(n + 1);
  layers.forEach((l, i) => {
    cost[i + 1] = (cost[i] ?? 0) + l.costMs;
    params[i + 1] = (params[i] ?? 0) + l.paramBytes;
    acts[i + 1] = (acts[i] ?? 0) + l.activationBytes;
  });
  const out = layers.map((l) => l.outputBytes ?? 0);
  return { P, M, inFlight: Math.min(P, M), referenceGflops, cost, params, acts, out, bytesPerMs };
}

const at = (a: Float64Array, i: number): number => a[i] ?? 0;

function stageMs(p: Prepared, device: StageDevice, first: number, end: number): number {
  const compute = ((at(p.cost, end) - at(p.cost, first)) * p.referenceGflops) / device.gflops;
  // Activations in and out, and their gradients back: each boundary's bytes cross twice.
  const boundary =
    (first > 0 ? (p.out[first - 1] ?? 0) : 0) + (end < p.out.length ? (p.out[end - 1] ?? 0) : 0);
  return compute + (2 * boundary) / p.bytesPerMs;
}

function stageBytes(p: Prepared, first: number, end: number): number {
  return (
    PARAM_COPIES * (at(p.params, end) - at(p.params, first)) +
    p.inFlight * (at(p.acts, end) - at(p.acts, first))
  );
}

function toPlan(p: Prepared, devices: readonly StageDevice[], ranges: readonly StageRange[]): StagePlan {
  const stages = ranges.map((r, s): PlannedStage => {
    const device = devices[s];
    if (device === undefined) throw new Error(`unreachable: no device for stage ${s}`);
    return {
      device: device.id,
      first: r.first,
      end: r.end,
      predictedMs: stageMs(p, device, r.first, r.end),
      memoryBytes: stageBytes(p, r.first, r.end),
    };
  });
  const bottleneckMs = Math.max(...stages.map((s) => s.predictedMs));
  return { stages, bottleneckMs, predictedStepMs: (p.M + p.P - 1) * bottleneckMs };
}

function memoryError(p: Prepared, device: StageDevice, first: number, end: number, why: string): PlanError {
  const needBytes = stageBytes(p, first, end);
  return new PlanError(
    `device ${device.id} cannot hold layers [${first}, ${end}) (${why}): needs ${needBytes} bytes ` +
      `(params x ${PARAM_COPIES} + activations x ${p.inFlight} in flight), has ${device.memoryBytes}`,
    { device: device.id, first, end, needBytes, haveBytes: device.memoryBytes },
  );
}

/**
 * Cuts `layers` into one contiguous non-empty stage per device (devices in pipeline order) so that
 * the slowest stage's time is least, subject to every stage fitting its device's memory. Among the
 * cuts with that least bottleneck it takes the one whose stage times sum least: the bottleneck alone
 * leaves the other cuts free, and on the MNIST CNN (its second conv the bottleneck) that freedom
 * once cut after a relu instead of the pool behind it, sending 4x the bytes there (8.0 MB a step
 * instead of 5.6 MB) for the same predicted bottleneck. Exact: two dynamic programs over (stage,
 * layers covered), O(P n^2) each. Remaining ties go to the earliest start of each stage, walking
 * back from the last (deterministic).
 *
 * Throws ConfigError for malformed numbers, PlanError when no plan exists (more devices than
 * layers, or memory: the message names a device and the smallest layer range it could not hold).
 */
export function planStages(
  layers: readonly LayerProfile[],
  devices: readonly StageDevice[],
  opts: StagePlanOptions = {},
): StagePlan {
  const p = prepare(layers, devices, opts);
  const least = toPlan(p, devices, cutLayers(p, devices, layers.length, Infinity));
  return toPlan(p, devices, cutLayers(p, devices, layers.length, least.bottleneckMs));
}

/**
 * One dynamic program over (stage, layers covered). cap Infinity: least bottleneck (max of stage
 * times). A finite cap: least sum of stage times with every stage at most `cap` ms.
 */
function cutLayers(p: Prepared, devices: readonly StageDevice[], n: number, cap: number): StageRange[] {
  const P = p.P;
  const combine = cap === Infinity ? Math.max : (a: number, b: number): number => a + b;
  // best[s][j]: least objective of stages 0..s-1 covering layers [0, j); Infinity = infeasible.
  // from[s][j]: where stage s-1 starts in that optimum.
  const best = Array.from({ length: P + 1 }, () => new Float64Array(n + 1).fill(Infinity));
  const from = Array.from({ length: P + 1 }, () => new Int32Array(n + 1).fill(-1));
  const row = (a: readonly Float64Array[], s: number): Float64Array => a[s] ?? new Float64Array(0);
  row(best, 0)[0] = 0;

  for (let s = 1; s <= P; s++) {
    const device = devices[s - 1];
    if (device === undefined) throw new Error(`unreachable: no device ${s - 1}`);
    const prev = row(best, s - 1);
    const cur = row(best, s);
    const curFrom = from[s] ?? new Int32Array(0);
    // Stage s-1 ends at j; each of the P - s later stages needs at least one layer.
    const lastEnd = s === P ? n : n - (P - s);
    const firstEnd = s === P ? n : s;
    // The cheapest-in-memory candidate range, kept to explain an infeasible stage.
    let smallest: StageRange | null = null;
    for (let j = firstEnd; j <= lastEnd; j++) {
      for (let i = s - 1; i < j; i++) {
        const before = at(prev, i);
        if (before === Infinity) continue;
        const bytes = stageBytes(p, i, j);
        if (bytes > device.memoryBytes) {
          if (smallest === null || bytes < stageBytes(p, smallest.first, smallest.end))
            smallest = { first: i, end: j };
          continue;
        }
        const ms = stageMs(p, device, i, j);
        if (ms > cap) continue;
        const value = combine(before, ms);
        if (value < at(cur, j)) {
          cur[j] = value;
          curFrom[j] = i;
        }
      }
    }
    let any = false;
    for (let j = firstEnd; j <= lastEnd; j++) if (at(cur, j) !== Infinity) any = true;
    if (!any) {
      if (smallest === null) throw new PlanError(`no layers left for device ${device.id}`);
      throw memoryError(p, device, smallest.first, smallest.end, `stage ${s - 1} of ${P}`);
    }
  }

  const ranges: StageRange[] = [];
  for (let s = P, end = n; s >= 1; s--) {
    const first = (from[s] ?? new Int32Array(0))[end] ?? -1;
    if (first < 0) throw new Error(`unreachable: no back pointer at stage ${s}, layer ${end}`);
    ranges.unshift({ first, end });
    end = first;
  }
  return ranges;
}

/**
 * Predicts a given partition (e.g. from `parsePartition`) with the same model as `planStages`.
 * Throws ConfigError when `ranges` does not cover the layers with one stage per device, PlanError
 * when a stage does not fit its device.
 */
export function evaluatePartition(
  layers: readonly LayerProfile[],
  devices: readonly StageDevice[],
  ranges: readonly StageRange[],
  opts: StagePlanOptions = {},
): StagePlan {
  const issues = partitionIssues(ranges, layers.length, devices.length);
  if (issues.length > 0) throw new ConfigError('invalid partition', issues);
  const p = prepare(layers, devices, opts);
  ranges.forEach((r, s) => {
    const device = devices[s];
    if (device !== undefined && stageBytes(p, r.first, r.end) > device.memoryBytes)
      throw memoryError(p, device, r.first, r.end, `stage ${s} of ${p.P}`);
  });
  return toPlan(p, devices, ranges);
}
