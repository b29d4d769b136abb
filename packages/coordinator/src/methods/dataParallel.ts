import type { CoordinatorMethod, MethodContext, MethodRun, RankAssignment } from './method.ts';
import { STEP_WINDOW, baseAssign, replicaShards } from './method.ts';

/**
 * Data parallelism: every rank holds the whole model and trains on its own equal shard. With a
 * parameter server, ranks 0..K-1 (K = psShards, default 1) also serve a key range of the parameters
 * each (role worker+server, serverRank 0); with all-reduce every rank is a plain worker. The two
 * differ only in that.
 */
export function dataParallel(name: string, opts: { server: boolean }): CoordinatorMethod {
  return {
    name,
    prepare: (ctx) => Promise.resolve(prepareDataParallel(ctx, opts.server)),
  };
}

export function prepareDataParallel(ctx: MethodContext, server: boolean): MethodRun {
  const shards = replicaShards(ctx.config);
  const assignments = ctx.peers.map((_, rank): RankAssignment => {
    const role = server && rank < Math.max(1, ctx.config.psShards) ? 'worker+server' : 'worker';
    const shard = shards[rank]!;
    return {
      role,
      shard,
      stage: null,
      message: {
        ...baseAssign(ctx, rank, shards, shard),
        role: { kind: role },
        ...(server ? { serverRank: 0 } : {}),
      },
      traceName: `rank ${rank}${role === 'worker+server' ? ' (server)' : ''}`,
    };
  });
  return {
    assignments,
    pipelineView: null,
    bubble: null,
    barrierWindow: STEP_WINDOW,
    reportFields: () => ({}),
  };
}
