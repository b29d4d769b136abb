import type { StalenessReport } from '../types.ts';
import { prepareDataParallel } from './dataParallel.ts';
import type { CoordinatorMethod, MethodRun } from './method.ts';

/**
 * Asynchronous parameter server (`--sync ps-async --staleness S --ps-shards K`): assigned as the
 * synchronous one (ranks 0..K-1 serve a key range each, serverRank 0), but the coordinator grants
 * every step at once: the servers' version counters bound the staleness (a worker waits only for
 * its own replies), and a windowed barrier here would bring back the lockstep that lets one slow
 * worker slow everyone. Rank 0 collects the servers' final parameters before its last evaluation
 * (worker side), so the report's accuracy and the exported model are the servers'. The report
 * adds the staleness every worker reported with its steps (stepDone.staleness).
 */
export function asyncParameterServer(): CoordinatorMethod {
  return {
    name: 'ps-async',
    prepare(ctx) {
      const base = prepareDataParallel(ctx, true);
      const seen = ctx.peers.map((): number[] => []);
      // Per rank: samples and ms of the steps it reported (its own rate, whoever else is slow).
      const work = ctx.peers.map(() => ({ samples: 0, ms: 0 }));
      const run: MethodRun = {
        ...base,
        barrierWindow: ctx.config.steps,
        // Elastic: a worker that serves nothing may leave; each push stands alone, nothing is redone.
        elasticDrop: { expendable: (rank) => rank >= ctx.config.psShards },
        onStepDone(rank, msg) {
          if (msg.staleness !== undefined) seen[rank]?.push(msg.staleness);
          const w = work[rank];
          if (w) {
            w.samples += msg.samples;
            w.ms += msg.computeMs + msg.commMs;
          }
        },
        reportFields: () => ({ staleness: stalenessReport(ctx.config.staleness, seen, work) }),
      };
      return Promise.resolve(run);
    },
  };
}

/** The report's staleness block from each rank's per-step values and its samples and step ms. */
export function stalenessReport(
  bound: number,
  perRank: readonly (readonly number[])[],
  work: readonly { samples: number; ms: number }[] = [],
): StalenessReport {
  const mean = (v: readonly number[]): number => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0);
  const all = perRank.flat();
  return {
    bound,
    mean: mean(all),
    max: all.reduce((a, b) => Math.max(a, b), 0),
    perWorker: perRank.map((v, rank) => {
      const w = work[rank];
      return {
        rank,
        steps: v.length,
        mean: mean(v),
        max: v.reduce((a, b) => Math.max(a, b), 0),
        samplesPerSec: w && w.ms > 0 ? (w.samples * 1000) / w.ms : 0,
      };
    }),
  };
}
