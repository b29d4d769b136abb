// Data parallel over a ring: every worker computes its batch's gradients, the ring all-reduce
// averages them (allReduceMean, @peertrain/collective), every worker applies the same update.
import { allReduceMean } from '@peertrain/collective';
import { dataParallelState, timedGradients } from './data.ts';
import type { WorkerMethod } from './types.ts';

export const allReduceMethod: WorkerMethod = {
  name: 'allreduce',
  links({ peers, rank }) {
    // Ring: we send to the next rank and receive from the previous one.
    const n = peers.length;
    const next = peers[(rank + 1) % n]!;
    const prev = peers[(rank - 1 + n) % n]!;
    return { dial: [next], need: [next, prev] };
  },
  setup(ctx) {
    const { mesh, assign, signal, spans } = ctx;
    const { params, optimizer } = dataParallelState(ctx);
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      async step(step) {
        const { loss, grads, computeMs } = await timedGradients(ctx, params, step);
        // The timeline shows the ring's two halves: when any bucket was in reduce-scatter or all-gather.
        await allReduceMean(mesh, assign.peers, grads, {
          runId: assign.runId,
          step,
          bucketElems: assign.config.bucketElems,
          signal,
          now: () => spans.now(),
          onPhase: (kind, startMs, endMs) => spans.record(kind, startMs, endMs - startMs, { step }),
        });
        optimizer.step(params, grads);
        return { loss, computeMs };
      },
      beforeEval: () => Promise.resolve(),
      dispose: () => undefined,
    };
  },
};
