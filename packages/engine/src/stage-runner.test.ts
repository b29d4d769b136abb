import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schedule } from '@peertrain/schedules';
import type { AnyScheduleName } from '@peertrain/schedules';
import type { ModelSpec, StageRange } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { buildModel } from './model.ts';
import type { Model } from './model.ts';
import { StageOrderError, createStageRunner, profileLayers } from './stage-runner.ts';
import type { StageRunner, StageStepResult } from './stage-runner.ts';
import { tf } from './tf.ts';

const cnn: ModelSpec = {
  name: 'small-cnn',
  inputShape: [8, 8, 1],
  classes: 3,
  layers: [
    { kind: 'conv2d', filters: 3, kernel: 3, stride: 1, padding: 'same' },
    { kind: 'relu' },
    { kind: 'maxpool', size: 2 },
    { kind: 'conv2d', filters: 4, kernel: 3, stride: 1, padding: 'valid' },
    { kind: 'tanh' },
    { kind: 'flatten' },
    { kind: 'dense', units: 3 },
  ],
};

function batchOf(model: Model, n: number, seed: number): { x: Float32Array; y: Uint8Array } {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const x = Float32Array.from({ length: n * model.inputSize }, rand);
  const y = Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % model.classes);
  return { x, y };
}

/**
 * Runs one step of `name` over P stage runners in one process: each stage executes its op list in
 * order, a recv waits until the neighbour's send has happened (ops are interleaved round-robin).
 */
async function pipelineStep(
  runners: StageRunner[],
  name: AnyScheduleName,
  m: number,
  params: Float32Array[],
  data: { x: Float32Array; y: Uint8Array },
): Promise<{ grads: Float32Array[]; results: StageStepResult[] }> {
  const p = runners.length;
  const ops = schedule(name, p, m);
  const wire = new Map<string, Float32Array>();
  const out = new Map<string, Float32Array | null>();
  const pc = ops.map(() => 0);
  runners.forEach((r, s) => r.beginStep(params[s]!, data));
  const grads = runners.map((r) => new Float32Array(r.stage.paramCount));
  const results: StageStepResult[] = [];
  for (let progress = true; progress;) {
    progress = false;
    for (let s = 0; s < p; s++) {
      const op = ops[s]![pc[s]!];
      if (!op) continue;
      const r = runners[s]!;
      switch (op.kind) {
        case 'recvAct':
        case 'recvGrad': {
          const key = `${op.kind === 'recvAct' ? 'act' : 'grad'}:${op.from}->${s}:${op.mb}`;
          if (!wire.has(key)) continue; // blocked
          out.set(`in:${s}:${op.mb}:${op.kind}`, wire.get(key)!);
          break;
        }
        case 'forward':
          out.set(`fwd:${s}:${op.mb}`, await r.forward(op.mb, out.get(`in:${s}:${op.mb}:recvAct`) ?? null));
          break;
        case 'backward':
          out.set(`bwd:${s}:${op.mb}`, await r.backward(op.mb, out.get(`in:${s}:${op.mb}:recvGrad`) ?? null));
          break;
        case 'backwardInput': {
          const dy = out.get(`in:${s}:${op.mb}:recvGrad`) ?? null;
          out.set(`bwd:${s}:${op.mb}`, await r.backwardInput(op.mb, dy));
          break;
        }
        case 'backwardWeight':
          await r.backwardWeight(op.mb);
          break;
        case 'sendAct':
          wire.set(`act:${s}->${op.to}:${op.mb}`, out.get(`fwd:${s}:${op.mb}`)!);
          break;
        case 'sendGrad':
          wire.set(`grad:${s}->${op.to}:${op.mb}`, out.get(`bwd:${s}:${op.mb}`)!);
          break;
        case 'optimizer':
          results[s] = await r.endStep(grads[s]!);
          break;
      }
      pc[s]!++;
      progress = true;
    }
  }
  expect(pc).toEqual(ops.map((o) => o.length));
  return { grads, results };
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return d / scale;
}

describe('stage runner', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });
  afterAll(() => {
    tf.disposeVariables();
  });

  const model = buildModel(cnn);
  const cuts: StageRange[][] = [
    [{ first: 0, end: 7 }],
    [
      { first: 0, end: 3 },
      { first: 3, end: 7 },
    ],
    [
      { first: 0, end: 2 },
      { first: 2, end: 5 },
      { first: 5, end: 7 },
    ],
  ];
  const cases: [AnyScheduleName, number][] = [
    ['naive', 1],
    ['gpipe', 4],
    ['1f1b', 4],
    ['1f1b', 3], // uneven micro-batches: 10 rows as 3 + 3 + 4
    ['zb-h1', 4], // split backward: input parts, then the weight parts put off
    ['zb-h1', 3],
  ];

  for (const ranges of cuts) {
    for (const [name, m] of cases) {
      for (const recompute of [false, true]) {
        it(`P=${ranges.length} ${name} M=${m}${recompute ? ' recompute' : ''}: gradients and loss equal the whole batch's`, async () => {
          const batch = 10;
          const whole = model.initParams(3);
          const data = batchOf(model, batch, 5);
          const ref = await model.lossAndGrads(whole, data.x, data.y);
          const before = tf.memory().numTensors;
          const runners = ranges.map((r) =>
            createStageRunner(model, r, { batch, microBatches: m, recompute }),
          );
          const params = runners.map((r) =>
            whole.slice(r.stage.paramOffset, r.stage.paramOffset + r.stage.paramCount),
          );
          for (let step = 0; step < 2; step++) {
            const { grads, results } = await pipelineStep(runners, name, m, params, data);
            runners.forEach((r, s) => {
              const refSlice = ref.grads.subarray(
                r.stage.paramOffset,
                r.stage.paramOffset + r.stage.paramCount,
              );
              if (r.stage.paramCount > 0) expect(relDiff(grads[s]!, refSlice)).toBeLessThan(1e-5);
            });
            expect(results[ranges.length - 1]!.loss).toBeCloseTo(ref.loss, 5);
            for (const res of results) expect(res.peakActivationBytes).toBeGreaterThan(0);
          }
          for (const r of runners) r.dispose();
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    }
  }

  it('1F1B holds at most P micro-batches on the first stage, GPipe all M; recomputation holds less', async () => {
    const batch = 16;
    const m = 8;
    const ranges = [
      { first: 0, end: 2 },
      { first: 2, end: 3 },
      { first: 3, end: 5 },
      { first: 5, end: 7 },
    ];
    const whole = model.initParams(1);
    const data = batchOf(model, batch, 2);
    const peak = async (name: AnyScheduleName, recompute: boolean): Promise<StageStepResult> => {
      const runners = ranges.map((r) => createStageRunner(model, r, { batch, microBatches: m, recompute }));
      const params = runners.map((r) =>
        whole.slice(r.stage.paramOffset, r.stage.paramOffset + r.stage.paramCount),
      );
      const { results } = await pipelineStep(runners, name, m, params, data);
      for (const r of runners) r.dispose();
      return results[0]!;
    };
    const gpipe = await peak('gpipe', false);
    const ofob = await peak('1f1b', false);
    const ofobRe = await peak('1f1b', true);
    expect(ofob.peakActivationBytes).toBeLessThanOrEqual((gpipe.peakActivationBytes * 4) / 8);
    expect(ofobRe.peakActivationBytes).toBeLessThan(ofob.peakActivationBytes);
    expect(ofobRe.peakActivationBytesNoRecompute).toBe(ofob.peakActivationBytes);
  });

  it('recomputation never holds more than forward would: a reshape-only stage keeps what it saved', async () => {
    const flat = createStageRunner(
      model,
      { first: 5, end: 6 },
      { batch: 4, microBatches: 2, recompute: true },
    );
    flat.beginStep(new Float32Array(0), {});
    const inSize = flat.stage.inputShape.reduce((a, b) => a * b, 1);
    for (let mb = 0; mb < 2; mb++) await flat.forward(mb, new Float32Array(2 * inSize).fill(0.5));
    for (let mb = 0; mb < 2; mb++) await flat.backward(mb, new Float32Array(2 * inSize).fill(1));
    const res = await flat.endStep(new Float32Array(0));
    expect(res.peakActivationBytes).toBeLessThanOrEqual(res.peakActivationBytesNoRecompute);
    flat.dispose();
  });

  it('refuses ops out of order with a named error and keeps working', async () => {
    const runner = createStageRunner(
      model,
      { first: 0, end: 7 },
      { batch: 4, microBatches: 2, recompute: false },
    );
    await expect(runner.forward(0, null)).rejects.toBeInstanceOf(StageOrderError);
    runner.beginStep(model.initParams(1), batchOf(model, 4, 1));
    await expect(runner.backward(1, null)).rejects.toBeInstanceOf(StageOrderError);
    await expect(runner.forward(5, null)).rejects.toBeInstanceOf(StageOrderError);
    await runner.forward(0, null);
    await expect(runner.backwardWeight(0)).rejects.toBeInstanceOf(StageOrderError);
    await runner.backwardInput(0, null);
    await expect(runner.backwardInput(0, null)).rejects.toBeInstanceOf(StageOrderError);
    await expect(runner.backward(0, null)).rejects.toBeInstanceOf(StageOrderError);
    await expect(runner.endStep(new Float32Array(model.paramCount))).rejects.toBeInstanceOf(StageOrderError);
    runner.reset();
    runner.dispose();
  });

  it('profiles every layer', async () => {
    const costs = await profileLayers(model, 4, { reps: 1 });
    expect(costs.map((c) => c.name)).toEqual(model.layers.map((l) => `${l.index}.${l.spec.kind}`));
    expect(costs[0]!.paramBytes).toBe(model.layers[0]!.paramCount * 4);
    for (const c of costs) expect(c.costMs).toBeGreaterThanOrEqual(0);
  });
});
