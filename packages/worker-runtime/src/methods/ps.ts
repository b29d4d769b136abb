// Data parallel through a synchronous parameter server (@peertrain/collective ps.ts): every worker
// pushes its gradients to the server rank, which averages them, applies the update and sends the
// new parameters back. The server is also a worker (colocated).
import { createParameterServer, psWorkerStep } from '@peertrain/collective';
import { dataParallelState, timedGradients } from './data.ts';
import type { Placement, WorkerMethod } from './types.ts';

const serverOf = (assign: Placement): string => assign.peers[assign.serverRank ?? 0]!;

export const parameterServerMethod: WorkerMethod = {
  name: 'ps',
  links(assign) {
    const server = serverOf(assign);
    const self = assign.peers[assign.rank];
    // A star: the workers dial the server, the server waits for all of them.
    if (self === server) return { dial: [], need: assign.peers.filter((p) => p !== server) };
    return { dial: [server], need: [server] };
  },
  setup(ctx) {
    const { mesh, assign, signal, spans } = ctx;
    const { runId } = assign;
    const { params, optimizer } = dataParallelState(ctx);
    const serverId = serverOf(assign);
    const server =
      serverId === mesh.localId
        ? createParameterServer(mesh, {
            workers: assign.peers,
            params,
            runId,
            apply: (p, meanGrad) => optimizer.step(p, meanGrad),
          })
        : null;
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      async step(step) {
        const { loss, grads, computeMs, t1 } = await timedGradients(ctx, params, step);
        if (server) await server.serveStep(step, grads, { signal });
        else params.set(await psWorkerStep(mesh, serverId, grads, { runId, step, signal }));
        // The whole exchange, push and pull, as one span.
        spans.record('allreduce', t1, spans.now() - t1, { step });
        return { loss, computeMs };
      },
      beforeEval: () => Promise.resolve(),
      dispose: () => undefined,
    };
  },
};
