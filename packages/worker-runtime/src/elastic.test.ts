import { afterEach, describe, expect, it } from 'vitest';
import { buildModel, modelPreset, paramDiff } from '@peertrain/engine';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { SpanRecorder } from '@peertrain/telemetry';
import type { Mesh } from '@peertrain/transport';
import type { TrainSession } from './compute.ts';
import { newRunState } from './core.ts';
import type { WorkerCore } from './core.ts';
import {
  ElasticStateError,
  StepRedoError,
  elasticAllReduce,
  onEpoch,
  rewind,
  virtualRanks,
} from './elastic.ts';
import type { EpochMsg } from './elastic.ts';
import { elasticDiloco } from './methods/diloco-elastic.ts';
import type { Assign } from './methods/index.ts';
import { trainCluster } from './test-cluster.ts';

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

/** Trains `config` on a fresh cluster of 4 (trainCluster); `kill`: the rank that vanishes once `afterSteps` steps are done. */
const train = (config: RunConfigInput, room: string, kill?: { rank: number; afterSteps: number }) =>
  trainCluster(4, config, room, cleanups, kill);

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

  it('scaled-lr: undisturbed it is the fixed-global run; a loss keeps each batch and departs from it', async () => {
    const fixed = await train({ ...base, elastic: true }, 'el-fixed');
    const scaled = { ...base, elastic: true, elasticPolicy: 'scaled-lr' as const };
    const calm = await train(scaled, 'el-scaled-calm');
    // M = N0: the lr is config.lr * 4 / 4 and the mean is / 4: the same arithmetic, bit for bit.
    expect(paramDiff(calm.params, fixed.params, layout).maxAbsDiff).toBe(0);

    const hit = await train(scaled, 'el-scaled-hit', { rank: 2, afterSteps: 5 });
    expect(hit.report.loss.map((l) => l.step)).toEqual([...Array(12).keys()]);
    const from = hit.report.membershipChanges![0]!.step;
    // Before the loss every step is the calm run's; from the redone step on the survivors train on
    // their own 3 batches at 3/4 of the lr, so the run is another one.
    hit.report.loss
      .slice(0, from)
      .forEach((l, i) => expect(l.loss).toBeCloseTo(calm.report.loss[i]!.loss, 6));
    expect(hit.report.loss[from]!.loss).not.toBeCloseTo(calm.report.loss[from]!.loss, 6);
    expect(paramDiff(hit.params, calm.params, layout).maxRelDiff).toBeGreaterThan(1e-4);
  }, 120_000);
});

describe('elastic policies (one worker of two, fake gradients)', () => {
  // Worker 0 of an original pair; the coordinator's first epoch has it alone from step 0. Each
  // batch's gradient depends on the parameters and on whose batch it is, so the test sees which
  // batches were used and with which lr. SGD without momentum: params -= lr * grad.
  const P = 3;
  const own = (params: Float32Array): Float32Array => params.map((p, i) => p + i);
  const theirs = (params: Float32Array): Float32Array => params.map((p, i) => 2 * p - i);
  async function stepAlone(policy: 'fixed-global' | 'scaled-lr'): Promise<Float32Array> {
    const config = parseRunConfig({
      ...{ workers: 2, steps: 2, elastic: true, elasticPolicy: policy, lr: 0.1, dataset: 'synthetic' },
      optimizer: { kind: 'sgd', momentum: 0 },
    });
    const shards = [
      { start: 0, count: 10 },
      { start: 10, count: 10 },
    ];
    const assign: Assign = {
      ...{ type: 'assign', runId: 3, rank: 0, peers: ['w0', 'w1'], role: { kind: 'worker' } },
      ...{ shard: shards[0]!, allShards: shards, config },
    };
    const session = {
      initParams: () => new Float32Array(P).fill(1),
      gradients: (params: Float32Array) => Promise.resolve({ loss: 1, grads: own(params) }),
      gradientsOf: (params: Float32Array, _step: number, shard: { start: number }) =>
        Promise.resolve({ loss: 1, grads: shard.start === 0 ? own(params) : theirs(params) }),
    } as unknown as TrainSession;
    const mesh = { localId: 'w0' } as unknown as Mesh;
    const ctx = {
      ...{ mesh, assign, session, signal: new AbortController().signal, onHeld: () => undefined },
      spans: new SpanRecorder({ peerId: 'w0', now: () => 0 }),
    };
    const m = elasticAllReduce(ctx);
    const run = newRunState(assign);
    const core = { current: run, mesh, tell: () => undefined } as unknown as WorkerCore;
    onEpoch(core, { type: 'epoch', runId: 3, epoch: 1, peers: ['w0'], fromStep: 0 });
    await m.step(0);
    return m.evalParams!.slice();
  }

  it('fixed-global computes the lost batch too; scaled-lr its own at half the lr', async () => {
    const p0 = new Float32Array(P).fill(1);
    const g0 = own(p0);
    const g1 = theirs(p0);
    const fixed = await stepAlone('fixed-global');
    const scaled = await stepAlone('scaled-lr');
    // fixed-global: the mean over both original batches at the full lr.
    expect(fixed).toEqual(p0.map((p, i) => p - 0.1 * ((g0[i]! + g1[i]!) / 2)));
    // scaled-lr: its own batch alone, at lr * 1/2.
    expect(scaled).toEqual(p0.map((p, i) => p - 0.05 * g0[i]!));
  });
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

/**
 * One worker's method whose next gradients call can be held (`hold`: resolves once that call has
 * started; `release` lets it finish), and whose mesh refuses any use (an exchange under a
 * superseded epoch would reach it). w0 starts in a run of two members, w0 and w1.
 */
function racedWorker(config: RunConfigInput) {
  const parsed = parseRunConfig({ workers: 2, elastic: true, dataset: 'synthetic', ...config });
  const assign: Assign = {
    type: 'assign',
    runId: 7,
    rank: 0,
    peers: ['w0', 'w1'],
    role: { kind: 'worker' },
    shard: { start: 0, count: 10 },
    allShards: [
      { start: 0, count: 10 },
      { start: 10, count: 10 },
    ],
    config: parsed,
  };
  let held: { started: () => void; release: Promise<void> } | null = null;
  let release = (): void => undefined;
  const gradients = async (params: Float32Array, step: number) => {
    const h = held;
    held = null;
    if (h) {
      h.started();
      await h.release;
    }
    return { loss: step, grads: params.map((p) => p * 0.5 + step) };
  };
  const hold = (): Promise<void> =>
    new Promise<void>((started) => {
      held = { started, release: new Promise<void>((r) => (release = r)) };
    });
  const session = {
    initParams: () => new Float32Array(5).fill(1),
    gradients,
    gradientsOf: gradients,
  } as unknown as TrainSession;
  const refuse = (): never => {
    throw new Error('the mesh was used under a superseded epoch');
  };
  const mesh = new Proxy(
    { localId: 'w0' },
    { get: (target, key) => (key === 'localId' ? target.localId : refuse) },
  ) as unknown as Mesh;
  const ctx = {
    mesh,
    assign,
    session,
    signal: new AbortController().signal,
    spans: new SpanRecorder({ peerId: 'w0', now: () => 0 }),
    onHeld: () => undefined,
  };
  const told: unknown[] = [];
  const run = newRunState(assign);
  const core = { current: run, mesh, tell: (msg: unknown) => told.push(msg) } as unknown as WorkerCore;
  return { ctx, run, core, told, hold, release: () => release() };
}

describe('an epoch that arrives while a step computes', () => {
  // w1 is lost while w0 computes: the epoch of w0 alone redoes from step 0.
  const epoch: EpochMsg = { type: 'epoch', runId: 7, epoch: 2, peers: ['w0'], fromStep: 0 };

  it('all-reduce: the step stops before its exchange and is redone under the new epoch', async () => {
    const w = racedWorker({ steps: 3 });
    const m = elasticAllReduce(w.ctx);
    const computing = w.hold();
    const step0 = m.step(0);
    await computing;
    onEpoch(w.core, epoch);
    w.release();
    await expect(step0).rejects.toThrow(StepRedoError);
    expect(rewind(w.run)).toBe(0);
    await m.step(0); // alone: no exchange
    expect(w.told).toEqual([{ type: 'epochAck', runId: 7, epoch: 2 }]);
  });

  it('DiLoCo: the round ends without its exchange and is redone from its start', async () => {
    const sgd = { kind: 'sgd', momentum: 0 } as const;
    const w = racedWorker({ steps: 4, sync: 'diloco', innerSteps: 2, optimizer: sgd });
    const m = elasticDiloco(w.ctx);
    await m.step(0); // an inner step: nothing exchanged
    const computing = w.hold();
    const step1 = m.step(1); // the round's last inner step, then its exchange
    await computing;
    onEpoch(w.core, epoch);
    w.release();
    await expect(step1).rejects.toThrow(StepRedoError);
    expect(rewind(w.run)).toBe(0);
    await m.step(0);
    await m.step(1); // alone: the round ends without an exchange
    expect(w.told).toEqual([{ type: 'epochAck', runId: 7, epoch: 2 }]);
  });
});
