import type { RunView, StepPoint } from '@peertrain/coordinator';
import { runShape } from '@peertrain/protocol';

// The dashboard charts' columns, derived from the coordinator's RunView: plain number arrays (what
// uPlot takes). A run of hours has ~100,000 steps; redrawing them all every step would keep the
// dashboard's thread (the coordinator's thread too) busy. So the columns are built incrementally
// (only the steps added since the last update are read) and bounded: past `maxPoints` steps,
// neighbouring points merge pairwise into their means, and each point then stands for 2, 4, 8, ...
// steps. Below `maxPoints` there is one point per step. A mean hides a one-step spike, so the loss
// also keeps each point's lowest and highest step (the chart draws them as a band).

/** Steps averaged for samples/s and utilization: single steps jitter (workers run ahead by a window). */
export const SMOOTH_STEPS = 5;

/** Most points a chart line holds; between half and all of it once steps merge. */
export const MAX_CHART_POINTS = 1024;

export type ChartAxis = 'step' | 'time';

export interface ChartColumns {
  /** Step index (the mean of its steps once merged), and seconds since training started. */
  step: number[];
  timeS: number[];
  loss: (number | null)[];
  /** The lowest and highest loss of the steps in each point (equal to loss at a point a step). */
  lossMin: (number | null)[];
  lossMax: (number | null)[];
  /** Samples/s over the last SMOOTH_STEPS steps, and the mean since the start. */
  samplesPerSec: (number | null)[];
  samplesPerSecMean: (number | null)[];
  /** Bytes every peer sent during the step. */
  bytes: (number | null)[];
  /** Per rank: fraction of the last SMOOTH_STEPS steps' wall time it spent computing, 0..1. */
  utilization: (number | null)[][];
  evalStep: number[];
  evalTimeS: number[];
  accuracy: number[];
  /** Steps the run has, and how many steps one point stands for (1 until they merge). */
  steps: number;
  stepsPerPoint: number;
}

/** Per-step values in column order; null: none for this step. */
type Row = (number | null)[];
const FIXED = 6; // step, timeS, loss, samplesPerSec, samplesPerSecMean, bytes; then a column per rank
const LOSS = 2;

/** Sums and counts of the steps in each point, per column; lowest and highest for `extremes`. */
class Buckets {
  readonly sum: number[][] = [];
  readonly n: number[][] = [];
  readonly min = new Map<number, number[]>();
  readonly max = new Map<number, number[]>();
  /** Steps in each point. */
  readonly size: number[] = [];
  width = 1;

  constructor(
    private readonly maxPoints: number,
    extremes: readonly number[] = [],
  ) {
    for (const c of extremes) {
      this.min.set(c, []);
      this.max.set(c, []);
    }
  }

  get columns(): number {
    return this.sum.length;
  }

  addColumn(): void {
    this.sum.push(new Array<number>(this.size.length).fill(0));
    this.n.push(new Array<number>(this.size.length).fill(0));
  }

  push(row: Row): void {
    while (this.columns < row.length) this.addColumn();
    const last = this.size.length - 1;
    const open = last >= 0 && this.size[last]! < this.width;
    const at = open ? last : this.size.length;
    if (!open) {
      this.size.push(0);
      for (let c = 0; c < this.columns; c++) {
        this.sum[c]!.push(0);
        this.n[c]!.push(0);
      }
      for (const a of this.min.values()) a.push(Infinity);
      for (const a of this.max.values()) a.push(-Infinity);
    }
    this.size[at]!++;
    for (let c = 0; c < row.length; c++) {
      const v = row[c];
      if (v === null || v === undefined) continue;
      this.sum[c]![at]! += v;
      this.n[c]![at]!++;
      const lo = this.min.get(c);
      if (lo) lo[at] = Math.min(lo[at]!, v);
      const hi = this.max.get(c);
      if (hi) hi[at] = Math.max(hi[at]!, v);
    }
    if (this.size.length > this.maxPoints) this.halve();
  }

  /** Merges neighbouring points: half as many, each standing for twice the steps. */
  private halve(): void {
    const merge = (a: number[], join: (x: number, y: number) => number, none: number): void => {
      const half = Math.ceil(a.length / 2);
      for (let i = 0; i < half; i++) a[i] = join(a[2 * i]!, a[2 * i + 1] ?? none);
      a.length = half;
    };
    const add = (x: number, y: number): number => x + y;
    merge(this.size, add, 0);
    for (let c = 0; c < this.columns; c++) {
      merge(this.sum[c]!, add, 0);
      merge(this.n[c]!, add, 0);
    }
    for (const a of this.min.values()) merge(a, Math.min, Infinity);
    for (const a of this.max.values()) merge(a, Math.max, -Infinity);
    this.width *= 2;
  }

  mean(c: number): (number | null)[] {
    const sum = this.sum[c];
    const n = this.n[c];
    if (!sum || !n) return new Array<number | null>(this.size.length).fill(null);
    return sum.map((s, i) => (n[i]! > 0 ? s / n[i]! : null));
  }

  /** Lowest (or highest) value of each point of an `extremes` column; null where it has none. */
  extreme(c: number, which: 'min' | 'max'): (number | null)[] {
    const a = (which === 'min' ? this.min : this.max).get(c);
    if (!a) throw new RangeError(`column ${c} keeps no extremes`);
    return this.size.map((_, i) => (Number.isFinite(a[i]) ? a[i]! : null));
  }
}

/**
 * Chart columns of one run, fed the coordinator's growing steps array. update() reads only the
 * steps added since the last call when the array continues the one it saw (the coordinator appends);
 * anything else (a new run, other steps) starts over.
 */
export class ChartAccumulator {
  private buckets: Buckets;
  /** Steps read so far, and the first and last of them (to tell an appended array from another). */
  private consumed = 0;
  private first: StepPoint | undefined;
  private last: StepPoint | undefined;
  private globalBatch: number | null = null;
  // The smoothing window: the last SMOOTH_STEPS steps' wall ms and compute ms per rank.
  private window: StepPoint[] = [];
  private wallSum = 0;
  private computeSum: number[] = [];
  private cached: ChartColumns | null = null;
  private cachedEvals: RunView['evals'] | null = null;

  constructor(private readonly maxPoints = MAX_CHART_POINTS) {
    this.buckets = new Buckets(maxPoints, [LOSS]);
  }

  private reset(globalBatch: number | null): void {
    this.buckets = new Buckets(this.maxPoints, [LOSS]);
    this.consumed = 0;
    this.first = undefined;
    this.last = undefined;
    this.globalBatch = globalBatch;
    this.window = [];
    this.wallSum = 0;
    this.computeSum = [];
    this.cached = null;
  }

  private continues(steps: readonly StepPoint[]): boolean {
    const k = this.consumed;
    return steps.length >= k && (k === 0 || (steps[0] === this.first && steps[k - 1] === this.last));
  }

  private add(s: StepPoint): void {
    const ranks = Math.max(this.computeSum.length, s.computeMsByRank?.length ?? 0);
    while (this.computeSum.length < ranks) this.computeSum.push(0);
    this.window.push(s);
    this.wallSum += s.stepMs ?? 0;
    for (let r = 0; r < ranks; r++) this.computeSum[r]! += s.computeMsByRank?.[r] ?? 0;
    if (this.window.length > SMOOTH_STEPS) {
      const o = this.window.shift()!;
      this.wallSum -= o.stepMs ?? 0;
      for (let r = 0; r < ranks; r++) this.computeSum[r]! -= o.computeMsByRank?.[r] ?? 0;
    }
    const wall = s.stepMs === undefined ? 0 : this.wallSum;
    const gb = this.globalBatch;
    const row: Row = [
      s.step,
      s.tMs / 1000,
      Number.isFinite(s.loss) ? s.loss : null,
      gb !== null && wall > 0 ? (gb * this.window.length) / (wall / 1000) : null,
      s.samplesPerSec,
      s.bytes ?? null,
    ];
    for (let r = 0; r < ranks; r++) {
      row.push(wall > 0 ? Math.min(1, Math.max(0, this.computeSum[r]! / wall)) : null);
    }
    this.buckets.push(row);
  }

  /** The columns for this run view; the same object while neither steps nor evals changed. */
  update(run: Pick<RunView, 'steps' | 'evals' | 'config'>): ChartColumns {
    const { steps, evals } = run;
    // A config equal in value may come as a new object (a view rebuilt): compare what is used.
    const globalBatch = run.config ? runShape(run.config).globalBatch : null;
    if (globalBatch !== this.globalBatch || !this.continues(steps)) this.reset(globalBatch);
    const grew = steps.length > this.consumed;
    if (this.cached && !grew && evals === this.cachedEvals) return this.cached;
    for (let i = this.consumed; i < steps.length; i++) this.add(steps[i]!);
    this.consumed = steps.length;
    this.first = steps[0];
    this.last = steps[steps.length - 1];
    const b = this.buckets;
    const mean = (c: number): (number | null)[] => b.mean(c);
    const ranks = Math.max(0, b.columns - FIXED);
    this.cached = {
      step: mean(0) as number[],
      timeS: mean(1) as number[],
      loss: mean(LOSS),
      lossMin: b.extreme(LOSS, 'min'),
      lossMax: b.extreme(LOSS, 'max'),
      samplesPerSec: mean(3),
      samplesPerSecMean: mean(4),
      bytes: mean(5),
      utilization: Array.from({ length: ranks }, (_, r) => mean(FIXED + r)),
      evalStep: evals.map((e) => e.step),
      evalTimeS: evals.map((e) => e.tMs / 1000),
      accuracy: evals.map((e) => e.accuracy),
      steps: steps.length,
      stepsPerPoint: b.width,
    };
    this.cachedEvals = evals;
    return this.cached;
  }
}

/** Every step's columns, one point per step (no merging): for a run read once. */
export function chartColumns(run: Pick<RunView, 'steps' | 'evals' | 'config'>): ChartColumns {
  return new ChartAccumulator(Infinity).update(run);
}

/**
 * The x range of a chart's data: [min, max] as it is, but one point (a run's only evaluation, at
 * its last step) from 0 to that x, not the doubled span uPlot pads a single value to (an accuracy
 * point at step 200 on an axis to 400 beside a loss chart that ends at 200). No data: [0, 1].
 * `min` and `max`: the first and last x (ascending).
 */
export function xRangeOf(min: number | null, max: number | null): [number, number] {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min < max) return [min, max];
  return max > 0 ? [0, max] : [max - 1, max + 1];
}

/**
 * An axis's tick labels with each repeat of the label before it left blank: a formatter that rounds
 * (bytes to whole B, with no data yet on a 0-1 scale) would otherwise print "0 B" three times.
 */
export function tickLabels(labels: readonly string[]): string[] {
  return labels.map((l, i) => (i > 0 && l === labels[i - 1] ? '' : l));
}
