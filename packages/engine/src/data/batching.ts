// Deterministic batches, shared by the distributed workers and the single-worker reference.
//
// Each shard's samples are shuffled once per epoch with a seed derived from (seed, shard, epoch);
// step s of a worker with batch b takes positions [s*b, (s+1)*b) of the endless sequence
// perm(epoch 0), perm(epoch 1), ... so batches wrap across epochs without a short last batch.
// The reference's batch at step s is the concatenation of every rank's batch at step s, so one
// worker at batch N*b computes on exactly the union of the N workers' samples.
import type { Shard } from '@peertrain/protocol';
import { ConfigError } from '@peertrain/protocol';
import { ShapeError } from '../errors.ts';
import { mulberry32 } from '@peertrain/base';
import { mixSeed, shuffleInPlace } from '../prng.ts';
import type { Samples } from './dataset.ts';

const PERM_CACHE_SIZE = 64;
const permCache = new Map<string, Int32Array>();

/** Positions 0..count-1 of one shard in the order of one epoch. */
function epochPermutation(shard: Shard, epoch: number, seed: number): Int32Array {
  const key = `${shard.start}/${shard.count}/${seed}/${epoch}`;
  let perm = permCache.get(key);
  if (perm) {
    permCache.delete(key); // refresh its place in the LRU order
  } else {
    perm = Int32Array.from({ length: shard.count }, (_, i) => i);
    shuffleInPlace(perm, mulberry32(mixSeed(seed, shard.start, shard.count, epoch)));
    if (permCache.size >= PERM_CACHE_SIZE) permCache.delete(permCache.keys().next().value!);
  }
  permCache.set(key, perm);
  return perm;
}

function checkArgs(shard: Shard, step: number, batch: number): void {
  if (!(Number.isInteger(step) && step >= 0 && Number.isInteger(batch) && batch >= 1)) {
    throw new ConfigError('invalid batch request', [`step ${step}, batch ${batch}`]);
  }
  if (!(
    Number.isInteger(shard.start) &&
    shard.start >= 0 &&
    Number.isInteger(shard.count) &&
    shard.count >= 1
  )) {
    throw new ConfigError('invalid shard', [`start ${shard.start}, count ${shard.count}`]);
  }
}

/** Global training-set indices of a worker's batch at `step` ([batch], each in the shard). */
export function shardBatchIndices(shard: Shard, step: number, batch: number, seed: number): Int32Array {
  checkArgs(shard, step, batch);
  const out = new Int32Array(batch);
  let perm: Int32Array | undefined;
  let permEpoch = -1;
  for (let i = 0; i < batch; i++) {
    const position = step * batch + i;
    const epoch = Math.floor(position / shard.count);
    if (epoch !== permEpoch) {
      perm = epochPermutation(shard, epoch, seed);
      permEpoch = epoch;
    }
    out[i] = shard.start + perm![position % shard.count]!;
  }
  return out;
}

/**
 * The reference's batch at `step`: every rank's `shardBatchIndices` concatenated in rank order.
 * `batch` is per worker, or one size per rank when the planner sizes batches by device speed.
 */
export function globalBatchIndices(
  shards: readonly Shard[],
  step: number,
  batch: number | readonly number[],
  seed: number,
): Int32Array {
  const sizes = typeof batch === 'number' ? shards.map(() => batch) : batch;
  if (sizes.length !== shards.length) {
    throw new ConfigError('invalid batch request', [
      `${sizes.length} batch sizes for ${shards.length} shards`,
    ]);
  }
  const parts = shards.map((s, r) => shardBatchIndices(s, step, sizes[r]!, seed));
  const out = new Int32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface Batch {
  /** [n * sampleSize] */
  readonly x: Float32Array;
  /** [n] */
  readonly y: Uint8Array;
}

/**
 * Copies the rows of global indices `indices` out of `samples` (a split or a cached shard), into
 * `into` when given (its arrays must hold exactly [indices.length * sampleSize] and [indices.length]):
 * a fresh 100-400 KB array per step costs its page faults (~1 ms here), a reused one only the copy.
 */
export function gatherBatch(samples: Samples, indices: Int32Array, sampleSize: number, into?: Batch): Batch {
  const n = indices.length;
  if (into && (into.x.length !== n * sampleSize || into.y.length !== n)) {
    throw new ShapeError(
      `batch buffers hold ${into.y.length} samples of ${into.x.length / into.y.length}, not ${n} of ${sampleSize}`,
    );
  }
  const x = into?.x ?? new Float32Array(n * sampleSize);
  const y = into?.y ?? new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const index = indices[i]!;
    const row = index - samples.first;
    if (!(row >= 0 && row < samples.count)) {
      throw new ShapeError(`sample ${index} is outside [${samples.first}, ${samples.first + samples.count})`);
    }
    x.set(samples.x.subarray(row * sampleSize, (row + 1) * sampleSize), i * sampleSize);
    y[i] = samples.y[row]!;
  }
  return { x, y };
}
