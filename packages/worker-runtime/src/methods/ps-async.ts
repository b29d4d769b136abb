// Data parallel through an asynchronous parameter server with bounded staleness
// (@peertrain/collective ps-async.ts; `--sync ps-async --staleness S --ps-shards K --compress C`).
// Each step: apply the replies that arrived (waiting only while more than S of this worker's own
// pushes are unanswered), compute the gradient on the parameters held, push it and go on. The
// servers (ranks 0..K-1, or serverRank when K = 1) apply every push as it arrives, scaled by 1/N.
// No worker waits for another, so a slow worker slows only itself. Rank 0 collects the servers'
// exact parameters after the last step (beforeEval), so the final evaluation, the exported model
// and the reference comparison see the servers' model, not one worker's copy of it.
import { createAsyncParameterServer } from '@peertrain/collective';
import { parseCompression } from '@peertrain/compress';
import { inboxOf } from '../elastic.ts';
import { dataParallelState, timedGradients } from './data.ts';
import { serverLinks, shardApply, shardLayout } from './ps-shards.ts';
import type { WorkerMethod } from './types.ts';

export const asyncParameterServerMethod: WorkerMethod = {
  name: 'ps-async',
  links: serverLinks,
  setup(ctx) {
    const { mesh, assign, signal, spans } = ctx;
    const { config, runId, peers, rank } = assign;
    const { params } = dataParallelState(ctx);
    const ranges = shardLayout(assign, params.length);
    const ps = createAsyncParameterServer(mesh, {
      workers: peers,
      ranges,
      params,
      runId,
      staleness: config.staleness,
      totalSteps: config.steps,
      apply: shardApply(config, ranges, mesh.localId),
      compression: parseCompression(config.compress),
      seed: config.seed * 1000 + rank,
      collector: peers[0]!,
      // Elastic: a worker that serves nothing may leave; the others go on (the coordinator drops it).
      workersMayLeave: config.elastic,
      signal,
    });
    // Elastic: the coordinator's epochs name who is still in; the servers stop waiting for the rest
    // (a tab dropped for silence keeps its link open, so its closing alone would not tell them).
    if (config.elastic)
      inboxOf(assign).onMembers = (members) => {
        for (const w of peers) if (!members.includes(w)) ps.forget(w);
      };
    return {
      paramBytes: params.byteLength,
      evalParams: params,
      async step(step) {
        const t0 = spans.now();
        await ps.ready({ signal });
        // Waiting for its own replies is this method's only communication wait.
        if (spans.now() > t0) spans.record('wait', t0, spans.now() - t0, { step });
        const { loss, grads, computeMs, t1 } = await timedGradients(ctx, params, step);
        await ps.push(step, grads, { signal });
        spans.record('send', t1, spans.now() - t1, { step });
        const staleness = ps.takeStaleness();
        return { loss, computeMs, ...(staleness !== null ? { staleness } : {}) };
      },
      async beforeEval(after) {
        // Mid-run: this worker's freshest copy. After the last step: the servers' parameters
        // (rank 0, which evaluates and hands them back), every other worker drains its replies.
        if (after === config.steps) await ps.final({ signal });
        else await ps.drain({ signal });
      },
      dispose: () => ps.dispose(),
    };
  },
};
