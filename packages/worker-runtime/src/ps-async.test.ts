import { afterEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '@peertrain/coordinator';
import type { RunConfigInput } from '@peertrain/protocol';
import { memoryCluster } from './test-cluster.ts';
import type { WorkerRuntime } from './types.ts';

// Parameter servers end to end in Node: a real coordinator and N worker runtimes over the
// in-memory transport. Sharded sync ps must stay exact; ps-async with N = 1 and S = 0 is exact too
// (each push is applied at once, scaled by 1/1); with more workers it reports its staleness.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function cluster(n: number, room = 'psa'): { coord: Coordinator; workers: WorkerRuntime[] } {
  return memoryCluster(n, room, cleanups);
}

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  steps: 6,
  batch: 8,
  lr: 0.05,
  seed: 11,
  evalEvery: 3,
  reference: true,
};

describe('parameter servers over the in-memory transport', () => {
  it('sync ps sharded over 2 servers equals the single worker at batch 3x8', async () => {
    const { coord } = cluster(3);
    const report = await coord.run({ ...base, sync: 'ps', workers: 3, psShards: 2 }, { waitMs: 30_000 });
    expect(report.workers.map((w) => w.role)).toEqual(['worker+server', 'worker+server', 'worker']);
    expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
  });

  it('ps-async, 1 worker, staleness 0: equals the reference', async () => {
    const { coord } = cluster(1);
    const report = await coord.run(
      { ...base, sync: 'ps-async', workers: 1, staleness: 0 },
      { waitMs: 30_000 },
    );
    expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(report.staleness).toMatchObject({ bound: 0, max: 0 });
  });

  it('ps-async, 3 workers over 2 int8 shards, the last one slowed: finishes, learns, reports staleness', async () => {
    const { coord } = cluster(3);
    const report = await coord.run(
      { ...base, sync: 'ps-async', workers: 3, psShards: 2, staleness: 2, compress: 'int8', steps: 12 },
      { waitMs: 30_000, faults: ['slow'] },
    );
    expect(report.loss).toHaveLength(12);
    expect(report.evals.map((e) => e.step)).toEqual([3, 6, 9, 12]);
    expect(Number.isFinite(report.testAccuracy)).toBe(true);
    const s = report.staleness!;
    expect(s.bound).toBe(2);
    expect(s.perWorker.every((w) => w.steps > 0)).toBe(true);
    expect(s.max).toBeGreaterThanOrEqual(s.mean);
    // The slowed rank's own rate is the lowest (its steps take 3x the compute; the others' do not wait).
    const [r0, r1, r2] = s.perWorker.map((w) => w.samplesPerSec);
    expect(r2!).toBeLessThan(Math.min(r0!, r1!));
    // Lossy: the distance to the synchronous reference is reported, not required to vanish.
    expect(report.reference!.maxAbsDiff).toBeGreaterThan(0);
  });

  it('elastic ps-async: a worker lost mid-run is dropped and the others finish; a lost server fails the run', async () => {
    const config = { ...base, sync: 'ps-async', workers: 3, staleness: 1, steps: 30, elastic: true } as const;
    for (const victim of [2, 0]) {
      const { coord, net } = memoryCluster(3, `psa-el-${victim}`, cleanups);
      const off = coord.onEvent((e) => {
        if (e.type !== 'progress' || e.step < 8) return;
        off();
        net.closePeer(coord.view().peers.find((p) => p.rank === victim)!.peerId);
      });
      const run = coord.run({ ...config, reference: false }, { waitMs: 30_000 });
      if (victim === 0) {
        // Rank 0 serves the parameters: nothing can go on without it.
        await expect(run).rejects.toThrow(/it served parameters, the run cannot go on/);
        continue;
      }
      const report = await run;
      expect(report.loss.map((l) => l.step)).toEqual([...Array(30).keys()]);
      expect(report.membershipChanges).toEqual([
        expect.objectContaining({ cause: 'left during the run', peerId: report.workers[2]!.peerId }),
      ]);
      expect(report.evals.map((e) => e.step)).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
      expect(report.testAccuracy).toBeGreaterThan(0);
    }
  });
});
