import { afterEach, describe, expect, it } from 'vitest';
import { buildModel, modelPreset, paramDiff } from '@peertrain/engine';
import type { RunConfigInput, RunReport } from '@peertrain/protocol';
import { virtualRanks } from './elastic.ts';
import { memoryCluster } from './test-cluster.ts';

// Elastic data parallel end to end in Node: a real coordinator and 4 real worker runtimes over the
// in-memory transport. A worker that vanishes mid-run ends the epoch; the survivors redo the step
// on the same global batch, so the run ends with the undisturbed run's parameters.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// 4 workers at batch 8 on the synthetic set, SGD with momentum (the rollback restores its velocity).
const base: RunConfigInput = {
  ...{ dataset: 'synthetic', model: 'mlp', bucketElems: 10_000 },
  ...{ workers: 4, steps: 12, batch: 8, lr: 0.05, seed: 11, evalEvery: 0 },
};

/** Trains `config` on a fresh cluster of 4; `kill`: the rank that vanishes once `afterSteps` steps are done. */
async function train(
  config: RunConfigInput,
  room: string,
  kill?: { rank: number; afterSteps: number },
): Promise<{ report: RunReport; params: Float32Array }> {
  const { coord, net } = memoryCluster(4, room, cleanups);
  if (kill) {
    const off = coord.onEvent((e) => {
      if (e.type !== 'progress' || e.step !== kill.afterSteps) return;
      off();
      const victim = coord.view().peers.find((p) => p.rank === kill.rank)!;
      net.closePeer(victim.peerId);
    });
  }
  const report = await coord.run(config, { waitMs: 30_000 });
  const trained = coord.trainedModel();
  expect(trained).not.toBeNull();
  return { report, params: trained!.params.slice() };
}

const layout = buildModel(modelPreset('mlp')).params;

describe('elastic data parallel', () => {
  it('splits the original ranks into contiguous blocks', () => {
    expect([0, 1, 2, 3].map((i) => virtualRanks(4, 4, i))).toEqual([[0], [1], [2], [3]]);
    expect([0, 1, 2].map((i) => virtualRanks(4, 3, i))).toEqual([[0], [1], [2, 3]]);
    expect([0, 1].map((i) => virtualRanks(5, 2, i))).toEqual([
      [0, 1],
      [2, 3, 4],
    ]);
  });

  it('loses a worker at step 5 and ends with the undisturbed run’s parameters', async () => {
    const plain = await train(base, 'el-plain');
    const calm = await train({ ...base, elastic: true }, 'el-calm');
    // Undisturbed, the elastic arithmetic is the plain run's: the same batches, the same ring sum,
    // the same 1/4 (bit for bit).
    expect(paramDiff(calm.params, plain.params, layout).maxAbsDiff).toBe(0);
    expect(calm.report.membershipChanges).toEqual([]);

    const hit = await train({ ...base, elastic: true }, 'el-hit', { rank: 2, afterSteps: 5 });
    expect(hit.report.loss.map((l) => l.step)).toEqual([...Array(12).keys()]);
    const changes = hit.report.membershipChanges ?? [];
    expect(changes).toHaveLength(1);
    expect(changes[0]!.peerId).toBe(hit.report.workers[2]!.peerId);
    expect(changes[0]!.step).toBeGreaterThanOrEqual(5);
    expect(changes[0]!.step).toBeLessThanOrEqual(7);
    const diff = paramDiff(hit.params, calm.params, layout);
    console.log(`elastic: lost rank 2 at step ${changes[0]!.step}: ${JSON.stringify(diff)}`);
    expect(diff.maxRelDiff).toBeLessThanOrEqual(1e-5);
  }, 120_000);
});
