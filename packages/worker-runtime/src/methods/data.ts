// What the data-parallel methods (allreduce.ts, ps.ts) share: every worker holds the whole model and
// computes the gradients of its own batch.
import { createOptimizer } from '@peertrain/optim';
import type { Optimizer } from '@peertrain/optim';
import type { Ran } from '../compute.ts';
import type { MethodContext } from './types.ts';

export interface DataParallelState {
  /** The whole model's parameters [P], identical on every worker after each synchronous step. */
  params: Float32Array;
  optimizer: Optimizer;
}

export function dataParallelState(ctx: MethodContext): DataParallelState {
  const { config } = ctx.assign;
  const params = ctx.session.initParams();
  const optimizer = createOptimizer(config.optimizer, config.lr, params.length);
  // A resumed run (receiveResume checked the size) starts from the checkpoint's state.
  if (ctx.restore) {
    params.set(ctx.restore.params);
    optimizer.load(ctx.restore.optimizer);
  }
  return { params, optimizer };
}

/**
 * The worker's gradients for `step` [P], timed as a `compute` span; t1 is when the exchange may start.
 * With `out` [P] they are written there (a method that is done with them by the step's end reuses
 * one buffer: a fresh 400 KB array per step cost the MLP's tab ~1 ms of page faults, more under load).
 */
export async function timedGradients(
  ctx: MethodContext,
  params: Float32Array,
  step: number,
  out?: Float32Array,
): Promise<{ loss: number; grads: Float32Array; computeMs: number; t1: number }> {
  const t0 = ctx.spans.now();
  const { loss, grads, ran } = await ctx.session.gradients(params, step, {
    signal: ctx.signal,
    ...(out ? { out } : {}),
  });
  const t1 = ctx.spans.now();
  const computeMs = recordCompute(ctx, step, ran ?? { startMs: t0, endMs: t1 });
  return { loss, grads, computeMs, t1 };
}

/**
 * A `compute` span of `step` over `ran`, its ms. On a compute thread `ran` is the thread's own
 * interval: the call's also holds the hops there and back and the wait for the thread's turn,
 * which are not computation (they count as the step's communication, where they belong).
 */
export function recordCompute(ctx: MethodContext, step: number, ran: Ran): number {
  const ms = ran.endMs - ran.startMs;
  ctx.spans.record('compute', ran.startMs, ms, { step });
  return ms;
}

/**
 * Runs the optimizer's update `apply` as a span on the compute lane and returns its ms: a step's
 * compute is its gradients and its update (arithmetic on this worker), not only the former; the
 * update used to count as communication in the step's split.
 */
export function timedUpdate(ctx: MethodContext, step: number, apply: () => void): number {
  const t0 = ctx.spans.now();
  apply();
  const ms = ctx.spans.now() - t0;
  ctx.spans.record('optimizer', t0, ms, { step });
  return ms;
}
