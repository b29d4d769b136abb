// Data parallel over a ring: every worker computes its batch's gradients, the ring all-reduce
// averages them (allReduceMean, @peertrain/collective; compressed with config.compress), every
// worker applies the same update. With config.overlap the all-reduce runs bucket by bucket under
// the backward pass (overlap.ts), same bits.
import { joinState } from '@peertrain/protocol';
import { elasticAllReduce } from '../elastic.ts';
import { dataParallelState, timedGradients } from './data.ts';
import { exchangeCompressor, meanOverRing, ringLinks } from './exchange.ts';
import { overlappedMeanGradients } from './overlap.ts';
import type { WorkerMethod } from './types.ts';

export const allReduceMethod: WorkerMethod = {
  name: 'allreduce',
  links: ringLinks,
  setup(ctx) {
    if (ctx.assign.config.elastic) return elasticAllReduce(ctx); // a lost member ends the epoch, not the run
    const { params, optimizer } = dataParallelState(ctx);
    // The gradients' compression state (error feedback) lives as long as the run.
    const compressor = exchangeCompressor(ctx, params.length);
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      async step(step) {
        if (ctx.assign.config.overlap) {
          // (parseRunConfig refuses overlap with compression: the compressor sees the whole tensor)
          const { loss, grads, computeMs } = await overlappedMeanGradients(ctx, params, step);
          optimizer.step(params, grads);
          return { loss, computeMs };
        }
        const { loss, grads, computeMs } = await timedGradients(ctx, params, step);
        // The timeline shows the ring's two halves: when any bucket was in reduce-scatter or all-gather.
        await meanOverRing(ctx, grads, step, compressor);
        optimizer.step(params, grads);
        return { loss, computeMs };
      },
      beforeEval: () => Promise.resolve(),
      dispose: () => undefined,
      // Every rank holds the same state after a synchronous step: rank 0's is the run's.
      checkpointState: () => (ctx.assign.rank === 0 ? joinState(params, optimizer.state()) : null),
    };
  },
};
