import { afterEach, describe, expect, it } from 'vitest';
import { buildModel, modelPreset, paramDiff } from '@peertrain/engine';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput, RunReport } from '@peertrain/protocol';
import { SpanRecorder } from '@peertrain/telemetry';
import type { Mesh } from '@peertrain/transport';
import type { TrainSession } from './compute.ts';
import { newRunState } from './core.ts';
import type { WorkerCore } from './core.ts';
import { ElasticStateError, elasticAllReduce, onEpoch, rewind, virtualRanks } from './elastic.ts';
import type { Assign } from './methods/index.ts';
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
    // The reported loss of every step is the global batch's, whoever computed it.
    hit.report.loss.forEach((l, i) =>
      expect(Math.abs(l.loss - calm.report.loss[i]!.loss)).toBeLessThan(1e-5 * calm.report.loss[i]!.loss),
    );
    const diff = paramDiff(hit.params, calm.params, layout);
    console.log(`elastic: lost rank 2 at step ${changes[0]!.step}: ${JSON.stringify(diff)}`);
    expect(diff.maxRelDiff).toBeLessThanOrEqual(1e-5);
  }, 120_000);

  it('loses rank 0 mid-run and after the last step: rank 1 evaluates and hands over the parameters', async () => {
    const calm = await train({ ...base, elastic: true, evalEvery: 4 }, 'el0-calm');
    for (const afterSteps of [5, 12]) {
      const hit = await train({ ...base, elastic: true, evalEvery: 4 }, `el0-hit${afterSteps}`, {
        rank: 0,
        afterSteps,
      });
      expect(hit.report.loss.map((l) => l.step)).toEqual([...Array(12).keys()]);
      const changes = hit.report.membershipChanges ?? [];
      expect(changes.map((c) => c.peerId)).toEqual([hit.report.workers[0]!.peerId]);
      // The final evaluation came from the new leader, on the undisturbed run's parameters.
      expect(hit.report.evals.at(-1)).toMatchObject({
        step: 12,
        accuracy: calm.report.evals.at(-1)!.accuracy,
      });
      expect(paramDiff(hit.params, calm.params, layout).maxRelDiff).toBeLessThanOrEqual(1e-5);
    }
  }, 180_000);
});

describe('elastic rollback (one worker, fake gradients)', () => {
  it('an epoch that redoes an applied step restores the parameters and momentum before it', async () => {
    const P = 5;
    const config = parseRunConfig({ workers: 1, steps: 6, elastic: true, lr: 0.1, dataset: 'synthetic' });
    const assign: Assign = {
      type: 'assign',
      runId: 7,
      rank: 0,
      peers: ['w0'],
      role: { kind: 'worker' },
      shard: { start: 0, count: 10 },
      allShards: [{ start: 0, count: 10 }],
      config,
    };
    // Gradients depend on the parameters and the step, so a wrong rollback shows in the result.
    const gradients = (params: Float32Array, step: number): Promise<{ loss: number; grads: Float32Array }> =>
      Promise.resolve({ loss: step, grads: params.map((p, i) => p * 0.5 + step + i) });
    const session = { initParams: () => new Float32Array(P).fill(1), gradients } as unknown as TrainSession;
    const mesh = { localId: 'w0' } as unknown as Mesh;
    const spans = new SpanRecorder({ peerId: 'w0', now: () => 0 });
    const ctx = {
      mesh,
      assign,
      session,
      signal: new AbortController().signal,
      spans,
      onHeld: () => undefined,
    };
    const m = elasticAllReduce(ctx);
    const after: Float32Array[] = [];
    for (let s = 0; s < 4; s++) {
      await m.step(s);
      after.push(m.evalParams!.slice());
    }
    // The coordinator says: epoch 2 redoes from step 2 (this worker had applied steps 2 and 3).
    const told: unknown[] = [];
    const run = newRunState(assign);
    run.completed = 4;
    const core = { current: run, mesh, tell: (msg: unknown) => told.push(msg) } as unknown as WorkerCore;
    onEpoch(core, { type: 'epoch', runId: 7, epoch: 2, peers: ['w0'], fromStep: 2 });
    rewind(run);
    expect(run.completed).toBe(2);
    await expect(m.step(3)).rejects.toThrow(ElasticStateError); // the loop asks for fromStep, not later
    await m.step(2);
    expect(told).toEqual([{ type: 'epochAck', runId: 7, epoch: 2 }]);
    expect(m.evalParams).toEqual(after[2]);
    await m.step(3);
    expect(m.evalParams).toEqual(after[3]); // momentum restored too: the same update again
  });
});
