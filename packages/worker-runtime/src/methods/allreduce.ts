// Data parallel over a ring: every worker computes its batch's gradients, the ring all-reduce
// averages them (allReduceMean, @peertrain/collective; compressed with config.compress), every
// worker applies the same update. With config.overlap the all-reduce runs bucket by bucket under
// the backward pass (overlap.ts), same bits.
import { PHASE_TIMEOUTS, joinState } from '@peertrain/protocol';
import { elasticAllReduce } from '../elastic.ts';
import { hopTimed } from '../phase-timeouts.ts';
import { dataParallelState, timedGradients, timedUpdate } from './data.ts';
import { exchangeCompressor, meanOverRing, ringLinks } from './exchange.ts';
import { overlapBuckets, overlappedMeanGradients } from './overlap.ts';
import type { MethodContext, MethodRun, WorkerMethod } from './types.ts';

export const allReduceMethod: WorkerMethod = {
  name: 'allreduce',
  links: ringLinks,
  setup(given) {
    // Each receive of the ring (one hop) has its named timeout.
    const ctx = { ...given, mesh: hopTimed(given.mesh, PHASE_TIMEOUTS.allreduceHop) };
    if (ctx.assign.config.elastic) return elasticAllReduce(ctx); // a lost member ends the epoch, not the run
    // (overlap hands layers out from the JS path; its buckets are that path's)
    const overlap = overlaps(ctx);
    if (ctx.session.deviceSteps && !overlap) return onDevice(ctx);
    const { params, optimizer } = dataParallelState(ctx);
    // The gradients' compression state (error feedback) lives as long as the run.
    const compressor = exchangeCompressor(ctx, params.length);
    // [P], reused: the ring averages it in place and the optimizer consumes it within the step.
    const gradsBuffer = new Float32Array(params.length);
    // The same for every step of the run.
    const buckets = overlap ? overlapBuckets(ctx) : [];
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      sharedEval: true, // the same params on every rank after a step
      async step(step) {
        if (overlap) {
          // (parseRunConfig refuses overlap with compression: the compressor sees the whole tensor)
          const { loss, grads, computeMs } = await overlappedMeanGradients(ctx, params, step, buckets);
          return { loss, computeMs: computeMs + timedUpdate(ctx, step, () => optimizer.step(params, grads)) };
        }
        const { loss, grads, computeMs } = await timedGradients(ctx, params, step, gradsBuffer);
        // The timeline shows the ring's two halves: when any bucket was in reduce-scatter or all-gather.
        await meanOverRing(ctx, grads, step, compressor);
        return { loss, computeMs: computeMs + timedUpdate(ctx, step, () => optimizer.step(params, grads)) };
      },
      beforeEval: () => Promise.resolve(),
      dispose: () => undefined,
      // Every rank holds the same state after a synchronous step: rank 0's is the run's.
      checkpointState: () => (ctx.assign.rank === 0 ? joinState(params, optimizer.state()) : null),
    };
  },
};

/**
 * Whether `--overlap` can hide anything: only with two buckets or more. With one (the CNN's 9,098
 * parameters in the default 65,536-element bucket) the only bucket is ready when the backward ends,
 * so nothing reaches the wire earlier, and the layer-by-layer backward's yields to the event loop
 * only add time (48 ms of a 184 ms CNN step on 4 wasm tabs here, 2 shared cores): such a run takes
 * the plain step, which gives the same bits (overlap.ts).
 */
function overlaps(ctx: MethodContext): boolean {
  const { overlap, bucketElems } = ctx.assign.config;
  return overlap && ctx.session.paramCount > bucketElems;
}

/**
 * The same method with the replica on the device (TrainSession.deviceSteps: webgpu, webgl): the
 * gradients are read back only to be exchanged (not at all for a single worker), the mean goes up
 * once and the optimizer runs on the device. `params` is the host copy, refreshed only when asked
 * for (syncParams: evaluation, the final model, the reference).
 */
function onDevice(ctx: MethodContext): MethodRun {
  const params = ctx.session.initParams();
  const device = ctx.session.deviceSteps!(params);
  const compressor = exchangeCompressor(ctx, params.length);
  const alone = ctx.assign.peers.length <= 1;
  const grads = alone ? null : new Float32Array(params.length); // reused: the exchange's buffer
  return {
    paramBytes: params.byteLength,
    evalParams: params,
    sharedEval: true, // syncParams reads the same params on every rank
    async step(step) {
      const t0 = ctx.spans.now();
      await device.compute(step, { signal: ctx.signal });
      if (grads === null) {
        const loss = device.readLoss(); // the only readback of a single worker's step
        device.apply();
        const value = await loss;
        const computeMs = ctx.spans.now() - t0;
        ctx.spans.record('compute', t0, computeMs, { step });
        return { loss: value, computeMs };
      }
      const [loss] = await Promise.all([device.readLoss(), device.readGrads(grads)]);
      const computeMs = ctx.spans.now() - t0;
      ctx.spans.record('compute', t0, computeMs, { step });
      await meanOverRing(ctx, grads, step, compressor);
      device.apply(grads);
      return { loss, computeMs };
    },
    syncParams: () => device.readParams(params),
    beforeEval: () => Promise.resolve(),
    dispose: () => device.dispose(),
  };
}
