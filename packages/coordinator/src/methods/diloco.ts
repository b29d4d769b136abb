import { prepareDataParallel } from './dataParallel.ts';
import type { CoordinatorMethod } from './method.ts';

/**
 * DiLoCo (`--sync diloco --inner-steps H`): assigned as data parallelism over a ring (every rank a
 * worker with its own shard), but workers meet only at the end of each round of H inner steps, so
 * the barrier lets them run a whole round ahead (H + 1 steps granted): a step barrier of 2 would
 * bring back a round trip to the coordinator every step, the cost local steps exist to avoid. The
 * round's outer all-reduce synchronizes them anyway.
 */
export function diloco(): CoordinatorMethod {
  return {
    name: 'diloco',
    prepare(ctx) {
      const base = prepareDataParallel(ctx, false);
      return Promise.resolve({ ...base, barrierWindow: ctx.config.innerSteps + 1 });
    },
  };
}
