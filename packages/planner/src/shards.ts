import type { Shard } from '@peertrain/protocol';
import { ConfigError } from '@peertrain/protocol';

/**
 * Splits `trainCount` samples into `workers` disjoint contiguous shards of equal size (the
 * remainder is left out so that every worker runs the same number of samples per epoch).
 * Equal shards keep the data-parallel result identical to the single-worker reference at batch
 * workers * batch; speed-weighted shards come with the planner issue.
 */
export function planShards(trainCount: number, workers: number): Shard[] {
  if (!Number.isInteger(workers) || workers < 1)
    throw new ConfigError(`workers must be >= 1, got ${workers}`);
  const count = Math.floor(trainCount / workers);
  if (count < 1) throw new ConfigError(`${trainCount} samples cannot be split over ${workers} workers`);
  return Array.from({ length: workers }, (_, rank) => ({ start: rank * count, count }));
}
