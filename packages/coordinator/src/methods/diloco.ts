import { prepareDataParallel } from './dataParallel.ts';
import type { CoordinatorMethod } from './method.ts';

/**
 * How far past the slowest finished step DiLoCo's workers are granted. Workers meet only at the
 * round ends' outer all-reduce, which synchronizes them by itself, so the coordinator's barrier
 * must never be the tighter bound: a step barrier of 2 would bring back a round trip to the
 * coordinator every step, the cost local steps exist to avoid.
 * - Plain: a worker ends round k+1 (step e_k + H) only after the slowest ended round k (step e_k),
 *   so H + 1 past the slowest finished step never binds in theory. But the coordinator learns of
 *   round k's end from its reports, sent as it ends, and its grant reaches the workers a round trip
 *   later: with H + 1 every worker ran one step of round k+1 and then waited for that grant, every
 *   round (seen in the elastic DiLoCo e2e's traces). One round more, 2H + 1, lets the whole of
 *   round k+1 run under the grant sent at round k-1's end.
 * - Overlapped (`overlapOuter`): round k's exchange is awaited only at round k+1's end, so a
 *   worker may end round k+1 while the slowest still computes round k's last step: one round more
 *   again, 3H + 1. (With the bound itself the grant stopped the fast workers several times a
 *   round, up to 11% of their time, 3 wasm tabs, H = 20.)
 */
export function dilocoWindow(innerSteps: number, overlapOuter: boolean): number {
  return (overlapOuter ? 3 : 2) * innerSteps + 1;
}

/**
 * DiLoCo (`--sync diloco --inner-steps H`): assigned as data parallelism over a ring (every rank a
 * worker with its own shard), but workers meet only at the end of each round of H inner steps, so
 * the barrier lets them run up to a round ahead (`dilocoWindow`).
 */
export function diloco(): CoordinatorMethod {
  return {
    name: 'diloco',
    prepare(ctx) {
      const base = prepareDataParallel(ctx, false);
      const { innerSteps, overlapOuter } = ctx.config;
      return Promise.resolve({
        ...base,
        barrierWindow: dilocoWindow(innerSteps, overlapOuter),
        // Elastic: an epoch redoes a whole round; a joiner comes in at a round's start.
        epochBoundary: (step: number) => step - (step % innerSteps),
      });
    },
  };
}
