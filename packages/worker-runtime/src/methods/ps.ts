// Data parallel through a synchronous parameter server (@peertrain/collective ps.ts): every worker
// pushes its gradients to the server(s), which average them, apply the update and send the new
// parameters back. Servers are also workers (colocated): the assignment's serverRank, or with
// `--ps-shards K` ranks 0..K-1, each serving one key range (ps-shards.ts).
import { createParameterServer, psWorkerStep } from '@peertrain/collective';
import { dataParallelState, timedGradients } from './data.ts';
import { serverLinks, shardApply, shardLayout } from './ps-shards.ts';
import type { WorkerMethod } from './types.ts';

export const parameterServerMethod: WorkerMethod = {
  name: 'ps',
  links: serverLinks,
  setup(ctx) {
    const { mesh, assign, signal, spans } = ctx;
    const { runId } = assign;
    const { params } = dataParallelState(ctx);
    const ranges = shardLayout(assign, params.length);
    const server = ranges.some((r) => r.serverId === mesh.localId)
      ? createParameterServer(mesh, {
          workers: assign.peers,
          params,
          runId,
          ranges,
          apply: shardApply(assign.config, ranges, mesh.localId),
        })
      : null;
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      async step(step) {
        const { loss, grads, computeMs, t1 } = await timedGradients(ctx, params, step);
        if (server) await server.serveStep(step, grads, { signal });
        else params.set(await psWorkerStep(mesh, ranges, grads, { runId, step, signal }));
        // The whole exchange, push and pull, as one span.
        spans.record('allreduce', t1, spans.now() - t1, { step });
        return { loss, computeMs };
      },
      beforeEval: () => Promise.resolve(),
      dispose: () => undefined,
    };
  },
};
