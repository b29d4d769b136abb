import { afterEach, describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import type { Compute } from './compute.ts';
import { ComputeThreadError } from './compute-thread.ts';
import { memoryCluster, nodeCompute, threadedNodeCompute } from './test-cluster.ts';

// The compute engine behind the compute thread's protocol (compute-thread.ts): whole runs of every
// kind of session use (per-layer hooks, pipeline stages with split backward, device steps, elastic
// gradientsOf, evaluations, the reference) end on the same bits as the engine called directly; and
// the protocol's own cases: cancelling, the thread's error names, a dead thread.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const mlp: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  workers: 2,
  steps: 4,
  batch: 8,
  lr: 0.05,
  seed: 3,
  evalEvery: 2,
  reference: true,
};

async function train(config: RunConfigInput, threaded: boolean, room: string, deviceSteps = false) {
  const { coord } = memoryCluster(config.workers ?? 1, room, cleanups, { threaded, deviceSteps });
  const report = await coord.run(config, { waitMs: 30_000 });
  expect(report.errors).toEqual([]);
  const trained = coord.trainedModel();
  if (!trained) throw new Error(`${room}: no model`);
  return { report, params: trained.params.slice() };
}

const bits = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('compute thread: the same runs, bit for bit', () => {
  const cases: [string, RunConfigInput, boolean][] = [
    ['overlapped all-reduce (per-layer hooks)', { ...mlp, overlap: true, bucketElems: 1000 }, false],
    ['all-reduce on device steps', mlp, true],
    ['elastic all-reduce (gradientsOf)', { ...mlp, elastic: true }, false],
    ['diloco, overlapped outer step', { ...mlp, sync: 'diloco', innerSteps: 2, overlapOuter: true }, false],
    [
      'zb-h1 pipeline with recomputation (stages, split backward)',
      {
        ...mlp,
        strategy: 'pipeline',
        model: 'deepMlp',
        workers: 3,
        batch: 12,
        schedule: 'zb-h1',
        microBatches: 4,
        recompute: true,
        evalEvery: 0,
      },
      false,
    ],
  ];
  cases.forEach(([name, config, deviceSteps], i) => {
    it(name, async () => {
      const direct = await train(config, false, `ct-${i}-direct`, deviceSteps);
      const threaded = await train(config, true, `ct-${i}-threaded`, deviceSteps);
      expect(threaded.report.loss).toEqual(direct.report.loss);
      expect(threaded.report.evals).toEqual(direct.report.evals);
      expect(threaded.report.reference).toEqual(direct.report.reference);
      expect(bits(threaded.params)).toEqual(bits(direct.params));
      expect(threaded.report.workers.map((w) => w.computeThread)).toEqual(
        threaded.report.workers.map(() => true),
      );
      expect(direct.report.workers.some((w) => w.computeThread)).toBe(false);
    });
  });
});

describe('compute thread: the protocol', () => {
  /** A threaded compute over a MessageChannel in this thread, and the run it prepares. */
  async function pair() {
    const closed: string[] = [];
    const threaded = await threadedNodeCompute(undefined, {}, () => closed.push('terminated'));
    cleanups.push(() => Promise.resolve(threaded.dispose()));
    const run = {
      config: parseRunConfig(mlp),
      shard: { start: 0, count: 64 },
      allShards: [{ start: 0, count: 64 }],
    };
    return { threaded, run, closed };
  }

  it('a cancelled call rejects with its reason at once, and the thread goes on serving', async () => {
    const { threaded, run } = await pair();
    const session = await threaded.prepare(run, {});
    const params = session.initParams();
    const abort = new AbortController();
    const pending = session.gradients(params, 0, { signal: abort.signal });
    abort.abort(new Error('stop now'));
    await expect(pending).rejects.toThrow('stop now');
    const r = await session.gradients(params, 0, {});
    expect(r.grads).toHaveLength(session.paramCount);
    expect(Number.isFinite(r.loss)).toBe(true);
  });

  it('says when the computation ran there, inside the call, and when each backward hook fired', async () => {
    const { threaded, run } = await pair();
    const session = await threaded.prepare(run, {});
    const params = session.initParams();
    const t0 = performance.now();
    const marks: number[] = [];
    const hooks = {
      layerStart: (_l: number, at?: number) => void marks.push(at!),
      layerGrads: (_l: number, _o: number, _g: Float32Array, at?: number) => void marks.push(at!),
    };
    const r = await session.gradients(params, 0, { hooks });
    const t1 = performance.now();
    expect(r.ran).toBeDefined();
    const { startMs, endMs } = r.ran!;
    expect(t0).toBeLessThanOrEqual(startMs);
    expect(startMs).toBeLessThanOrEqual(endMs);
    expect(endMs).toBeLessThanOrEqual(t1);
    expect(marks).toHaveLength(2 * session.layerCount!);
    marks.forEach((at, i) => {
      expect(at).toBeGreaterThanOrEqual(i === 0 ? startMs : marks[i - 1]!);
      expect(at).toBeLessThanOrEqual(endMs);
    });
    const of = await session.gradientsOf!(params, 1, run.shard, {});
    expect(of.ran!.startMs).toBeGreaterThanOrEqual(endMs);
    // The engine called directly computes within the call: no interval of its own.
    const direct = await (await nodeCompute()).prepare(run, {});
    expect((await direct.gradients(params, 0, {})).ran).toBeUndefined();
    direct.dispose();
  });

  it("a stage's passes say when they ran there, inside the call; a stage on the page says nothing", async () => {
    const { threaded } = await pair();
    const config = parseRunConfig({ ...mlp, strategy: 'pipeline', workers: 2, microBatches: 2 });
    const run = { config, shard: { start: 0, count: 64 }, allShards: [{ start: 0, count: 64 }] };
    const stageOf = async (compute: Compute) => {
      const session = await compute.prepare(run, {});
      cleanups.push(() => Promise.resolve(session.dispose()));
      const stage = session.stage({ first: 0, end: session.layerCount! }); // first and last
      await stage.beginStep(0, session.initParams(), {});
      return stage;
    };
    const stage = await stageOf(threaded);
    expect(stage.lastRan?.()).toBeUndefined();
    let before = performance.now();
    for (const pass of [() => stage.forward(0, null), () => stage.backward(0, null)]) {
      await pass();
      const after = performance.now();
      const ran = stage.lastRan!()!;
      expect(before).toBeLessThanOrEqual(ran.startMs);
      expect(ran.startMs).toBeLessThanOrEqual(ran.endMs);
      expect(ran.endMs).toBeLessThanOrEqual(after);
      before = after;
    }
    const direct = await stageOf(await nodeCompute());
    await direct.forward(0, null);
    expect('lastRan' in direct).toBe(false);
  });

  it("the thread's errors keep their names and messages", async () => {
    const { threaded, run } = await pair();
    const direct = await (await nodeCompute()).prepare(run, {});
    const session = await threaded.prepare(run, {});
    const bad = new Float32Array(3);
    const want = await direct.evaluate(bad, {}).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(want).not.toBeNull();
    const got = await session.evaluate(bad, {}).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(got?.name).toBe(want!.name);
    expect(got?.message).toBe(want!.message);
    direct.dispose();
  });

  it('a dead thread fails the pending and every later call by name', async () => {
    const { threaded, run } = await pair();
    const session = await threaded.prepare(run, {});
    const pending = session.gradients(session.initParams(), 0, {});
    threaded.fail(new ComputeThreadError('the compute thread crashed'));
    await expect(pending).rejects.toThrow(ComputeThreadError);
    await expect(session.evaluate(session.initParams(), {})).rejects.toThrow('the compute thread crashed');
  });

  it('dispose ends the thread', async () => {
    const { threaded, closed } = await pair();
    threaded.dispose();
    expect(closed).toEqual(['terminated']);
    await expect(threaded.profile(parseRunConfig(mlp), {})).rejects.toThrow(ComputeThreadError);
  });
});
