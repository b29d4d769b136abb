import { ConfigError, DATASETS, parsePartition, type RunConfig } from '@peertrain/protocol';
import { PlanError, evaluatePartition, type StagePlan, type StageRange } from '@peertrain/planner';
import type { PlanPreview } from '@peertrain/coordinator';

// The plan editor's arithmetic, apart from React: a partition of n layers into P stages is P - 1
// boundaries b_0 < b_1 < ... < b_{P-2}, b_k being the first layer of stage k + 1 (so stage k holds
// [b_{k-1}, b_k) with b_{-1} = 0 and b_{P-1} = n). Shard sizes of data parallelism work alike.

/** Boundaries [P - 1] of contiguous ranges [P]. */
export function boundariesOf(ranges: readonly StageRange[]): number[] {
  return ranges.slice(0, -1).map((r) => r.end);
}

/** Ranges [P] of boundaries [P - 1] over `layerCount` layers. */
export function rangesOf(boundaries: readonly number[], layerCount: number): StageRange[] {
  const cuts = [0, ...boundaries, layerCount];
  return cuts.slice(0, -1).map((first, s) => ({ first, end: cuts[s + 1]! }));
}

/** The partition field's text of ranges: inclusive "0-2,3-5,6" (a one-layer stage is its index). */
export function partitionText(ranges: readonly StageRange[]): string {
  return ranges.map((r) => (r.end - 1 === r.first ? `${r.first}` : `${r.first}-${r.end - 1}`)).join(',');
}

/**
 * Boundary `k` moved to `to`, clamped so that every stage keeps at least one layer (it cannot pass
 * its neighbours). Returns the same array when nothing moves.
 */
export function moveBoundary(
  boundaries: readonly number[],
  k: number,
  to: number,
  layerCount: number,
): readonly number[] {
  const current = boundaries[k];
  if (current === undefined) return boundaries;
  const lo = (k === 0 ? 0 : boundaries[k - 1]!) + 1;
  const hi = (k === boundaries.length - 1 ? layerCount : boundaries[k + 1]!) - 1;
  const next = Math.min(hi, Math.max(lo, Math.round(to)));
  if (next === current) return boundaries;
  return boundaries.map((b, i) => (i === k ? next : b));
}

/** `stages` near-equal contiguous ranges of `layerCount` layers (null when there are too few layers). */
export function evenRanges(layerCount: number, stages: number): StageRange[] | null {
  if (!(stages >= 1 && layerCount >= stages)) return null;
  return Array.from({ length: stages }, (_, s) => ({
    first: Math.floor((s * layerCount) / stages),
    end: Math.floor(((s + 1) * layerCount) / stages),
  }));
}

/**
 * What the editor draws for the partition field's text: the user's ranges when they parse, the
 * planner's proposal (or an even split until there is one) for 'auto' or blank; null when the text
 * does not describe `stages` ranges of these layers (the field shows why).
 */
export function editorRanges(
  text: string,
  layerCount: number,
  stages: number,
  proposal: StagePlan | null,
): StageRange[] | null {
  const t = text.trim();
  if (t === '' || t === 'auto') {
    if (proposal && proposal.stages.length === stages)
      return proposal.stages.map(({ first, end }) => ({ first, end }));
    return evenRanges(layerCount, stages);
  }
  try {
    return parsePartition(t, layerCount, stages);
  } catch (err) {
    if (err instanceof ConfigError) return null;
    throw err;
  }
}

/** A partition judged against a preview's devices: the prediction, or why a stage is refused. */
export type PartitionCheck =
  | { ok: true; plan: StagePlan }
  | {
      ok: false;
      /** The stage that does not fit (index), null when the ranges themselves are wrong. */
      stage: number | null;
      message: string;
    };

/** evaluatePartition on a preview's layers and devices (pure, runs on every drag). */
export function checkPartition(preview: PlanPreview, ranges: readonly StageRange[]): PartitionCheck {
  const devices = preview.devices.map((d) => ({ id: d.peerId, gflops: d.speed, memoryBytes: d.memoryBytes }));
  try {
    return { ok: true, plan: evaluatePartition(preview.layers, devices, ranges, preview.options) };
  } catch (err) {
    if (err instanceof PlanError) {
      const d = err.detail;
      const stage = d === null ? null : preview.devices.findIndex((x) => x.peerId === d.device);
      const message =
        d === null
          ? err.message
          : `stage ${stage} (layers ${d.first}-${d.end - 1}) does not fit ${d.device}: ` +
            `needs ${formatMiB(d.needBytes)}, has ${formatMiB(d.haveBytes)}`;
      return { ok: false, stage: stage !== null && stage >= 0 ? stage : null, message };
    }
    if (err instanceof ConfigError) return { ok: false, stage: null, message: err.message };
    throw err;
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;
}

/**
 * The config fields a preview depends on (which peers, which model, micro-batch size): a preview
 * taken for another key no longer describes the run the form would start.
 */
export function previewKey(
  c: Pick<RunConfig, 'strategy' | 'workers' | 'spares' | 'replicas' | 'model' | 'batch' | 'microBatches'>,
): string {
  return [c.strategy, c.workers, c.spares, c.replicas, c.model, c.batch, c.microBatches].join('/');
}

// ---- data parallelism: shard sizes in samples ----

/** The default shard sizes: floor(train / workers) each (planShards without weights). */
export function equalShardCounts(dataset: RunConfig['dataset'], workers: number): number[] {
  const train = DATASETS[dataset].train;
  if (!(Number.isInteger(workers) && workers >= 1)) return [];
  return Array.from({ length: workers }, () => Math.floor(train / workers));
}

/**
 * Shard sizes after the user typed `value` for worker `i` of `counts`: the last worker takes what
 * the others leave of the train set, so the sizes always sum to it (the last one is not edited).
 */
export function withShardCount(counts: readonly string[], i: number, value: string, train: number): string[] {
  const next = counts.map((c, j) => (j === i ? value : c));
  const last = next.length - 1;
  if (last < 1 || i === last) return next;
  const others = next.slice(0, last).reduce((a, c) => a + (Number(c.trim()) || 0), 0);
  next[last] = String(train - others);
  return next;
}
