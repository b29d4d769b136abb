// Data parallel through a synchronous parameter server (@peertrain/collective ps.ts): every worker
// pushes its gradients to the server(s), which average them, apply the update and send the new
// parameters back. Servers are also workers (colocated): the assignment's serverRank, or with
// `--ps-shards K` ranks 0..K-1, each serving one key range (ps-shards.ts).
import { createParameterServer, psWorkerStep } from '@peertrain/collective';
import { PHASE_TIMEOUTS, joinState } from '@peertrain/protocol';
import { hopTimed } from '../phase-timeouts.ts';
import { dataParallelState, timedGradients } from './data.ts';
import { serverLinks, shardApply, shardLayout } from './ps-shards.ts';
import type { WorkerMethod } from './types.ts';

export const parameterServerMethod: WorkerMethod = {
  name: 'ps',
  links: serverLinks,
  setup(given) {
    // Each push or pull received (one hop of the exchange) has its named timeout.
    const ctx = { ...given, mesh: hopTimed(given.mesh, PHASE_TIMEOUTS.allreduceHop) };
    const { mesh, assign, signal, spans } = ctx;
    const { runId } = assign;
    const { params, optimizer } = dataParallelState(ctx);
    const ranges = shardLayout(assign, params.length);
    // One server serves the whole range [0, P) with the (possibly restored) optimizer: its state is
    // the run's checkpoint; K servers keep one optimizer per range (not checkpointed yet).
    const single = ranges.length === 1;
    const serves = ranges.some((r) => r.serverId === mesh.localId);
    const server = serves
      ? createParameterServer(mesh, {
          workers: assign.peers,
          params,
          runId,
          ranges,
          apply: single
            ? (p: Float32Array, g: Float32Array) => optimizer.step(p, g)
            : shardApply(assign.config, ranges, mesh.localId),
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
      checkpointState: () => (single && serves ? joinState(params, optimizer.state()) : null),
    };
  },
};
