// What the parameter-server methods (ps.ts, ps-async.ts) share: the servers of `--ps-shards K`
// (ranks 0..K-1, each serving one key range of the flat parameter vector; with K = 1 the
// assignment's serverRank), the links to them, and one optimizer per served range.
import { evenShards } from '@peertrain/collective';
import type { PsShard } from '@peertrain/collective';
import { createOptimizer } from '@peertrain/optim';
import type { Optimizer } from '@peertrain/optim';
import type { RunConfig } from '@peertrain/protocol';
import type { MethodLinks, Placement } from './types.ts';

/** The server peers, in shard order. */
export function serverPeers(p: Placement): string[] {
  const k = p.config.psShards;
  if (k <= 1) return [p.peers[p.serverRank ?? 0]!];
  return p.peers.slice(0, k);
}

/** The shard layout of `size` parameters over the servers (the same on every peer). */
export function shardLayout(p: Placement, size: number): PsShard[] {
  return evenShards(serverPeers(p), size);
}

/**
 * A star per server: every worker dials the servers it is not, a server waits for every worker.
 * Between two servers the higher rank dials (each pair is linked once).
 */
export function serverLinks(p: Placement): MethodLinks {
  const servers = serverPeers(p);
  const self = p.peers[p.rank]!;
  const others = servers.filter((s) => s !== self);
  if (!servers.includes(self)) return { dial: others, need: others };
  const dial = others.filter((s) => p.peers.indexOf(s) < p.rank);
  const need = [...new Set([...others, ...p.peers.filter((q) => q !== self)])];
  return { dial, need };
}

/** One optimizer per served range (its state sized to the range), and `apply` that picks it. */
export function shardApply(
  config: Pick<RunConfig, 'optimizer' | 'lr'>,
  ranges: readonly PsShard[],
  localId: string,
): (params: Float32Array, grad: Float32Array, range: { start: number; end: number }) => void {
  const optimizers = new Map<number, Optimizer>();
  for (const r of ranges)
    if (r.serverId === localId)
      optimizers.set(r.start, createOptimizer(config.optimizer, config.lr, r.end - r.start));
  return (params, grad, range) => optimizers.get(range.start)!.step(params, grad);
}
