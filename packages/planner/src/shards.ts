import type { Shard } from '@peertrain/protocol';
import { ConfigError } from '@peertrain/protocol';

/**
 * Splits `trainCount` samples into `workers` disjoint contiguous shards, in rank order. Without
 * `weights` the shards are equal (floor(trainCount / workers) each); with them, rank r gets
 * floor(trainCount * w_r / sum(w)) samples (a faster device can draw from more samples). The
 * remainder of the division is left out. A shard only decides which samples a rank draws: its
 * batch per step is the run's batch either way, so the single-worker reference (the union of every
 * rank's batch) matches the distributed run with any weights.
 */
export function planShards(trainCount: number, workers: number, weights?: readonly number[]): Shard[] {
  if (!Number.isInteger(workers) || workers < 1)
    throw new ConfigError(`workers must be >= 1, got ${workers}`);
  const w = weights ?? Array.from({ length: workers }, () => 1);
  const issues: string[] = [];
  if (w.length !== workers) issues.push(`${w.length} shard weights for ${workers} workers`);
  w.forEach((x, r) => {
    if (!(Number.isFinite(x) && x > 0)) issues.push(`rank ${r}: shard weight ${x} is not a number > 0`);
  });
  if (issues.length > 0) throw new ConfigError('invalid shard weights', issues);
  const total = w.reduce((a, b) => a + b, 0);
  // Equal weights take the exact integer path, so default shards never depend on float rounding.
  const equal = w.every((x) => x === w[0]);
  const counts = w.map((x) =>
    equal ? Math.floor(trainCount / workers) : Math.floor((trainCount * x) / total),
  );
  const empty = counts.findIndex((c) => c < 1);
  if (empty >= 0)
    throw new ConfigError(
      `${trainCount} samples cannot be split over ${workers} workers` +
        (equal ? '' : `: rank ${empty} would get no sample`),
    );
  let start = 0;
  return counts.map((count) => {
    const shard = { start, count };
    start += count;
    return shard;
  });
}
