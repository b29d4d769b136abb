import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { globalBatchIndices, shardBatchIndices } from './data/batching.ts';
import { trainSamples } from './data/dataset.ts';
import { syntheticDataset } from './data/synthetic.ts';
import { ShapeError } from './errors.ts';
import { buildModel } from './model.ts';
import { createReplica, paramDiff, trainReference } from './reference.ts';
import type { TrainingConfig } from './reference.ts';

const spec: ModelSpec = {
  name: 'tiny',
  inputShape: [16],
  classes: 4,
  layers: [{ kind: 'dense', units: 12 }, { kind: 'relu' }, { kind: 'dense', units: 4 }],
};
const data = syntheticDataset(3, { train: 120, test: 200, inputShape: [16], classes: 4, separation: 0.3 });
const shards = [
  { start: 0, count: 40 },
  { start: 40, count: 40 },
  { start: 80, count: 40 },
];
const config: TrainingConfig = { lr: 0.05, optimizer: { kind: 'sgd', momentum: 0.9 }, batch: 8, seed: 9 };

describe('reference trainer', () => {
  beforeAll(async () => {
    await activateBackend('cpu');
  });

  it('N replicas at batch b with averaged gradients equal the reference at batch N*b', async () => {
    const steps = 15;
    const reference = await trainReference({ spec, config, shards, data, steps });
    const model = buildModel(spec);
    const replicas = shards.map(() => createReplica(model, config, trainSamples(data)));
    for (let step = 0; step < steps; step++) {
      const results = await Promise.all(
        replicas.map(async (r, rank) => {
          const { grads } = await r.gradients(
            shardBatchIndices(shards[rank]!, step, config.batch, config.seed),
          );
          return grads.slice(); // the replica reuses its buffer
        }),
      );
      // the all-reduce: mean of the per-worker mean gradients
      const mean = results[0]!.map((_, i) => results.reduce((s, g) => s + g[i]!, 0) / results.length);
      for (const r of replicas) r.apply(mean);
    }
    for (const r of replicas) {
      const d = paramDiff(r.params, reference.params, model.params);
      expect(d.maxRelDiff).toBeLessThan(1e-4);
    }
    expect(reference.losses.length).toBe(steps);
    // it learns: the loss falls
    const first = reference.losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = reference.losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last).toBeLessThan(first);
  });

  it('one reference step is a gradient on the global batch followed by the optimizer', async () => {
    const reference = await trainReference({ spec, config, shards, data, steps: 1 });
    const replica = createReplica(spec, config, trainSamples(data));
    const indices = globalBatchIndices(shards, 0, config.batch, config.seed);
    expect(indices.length).toBe(shards.length * config.batch);
    const { loss, grads } = await replica.gradients(indices);
    replica.apply(grads);
    expect(reference.losses).toEqual([loss]);
    expect(Array.from(reference.params)).toEqual(Array.from(replica.params));
  });

  it('stops when aborted', async () => {
    await expect(
      trainReference({ spec, config, shards, data, steps: 5, signal: AbortSignal.abort() }),
    ).rejects.toThrow();
  });
});

describe('paramDiff', () => {
  it('relative error is per tensor, scaled by the tensor max', () => {
    const b = Float32Array.from([10, 0, 1e-9, 2]);
    const a = Float32Array.from([10.5, 0, 2e-9, 2]);
    const layout = [
      { offset: 0, size: 3 },
      { offset: 3, size: 1 },
    ];
    const d = paramDiff(a, b, layout);
    expect(d.maxAbsDiff).toBeCloseTo(0.5, 6);
    expect(d.maxRelDiff).toBeCloseTo(0.05, 6); // 0.5 / 10, not 1e-9 / 1e-9
    expect(paramDiff(b, b).maxRelDiff).toBe(0);
    expect(paramDiff(Float32Array.from([1]), Float32Array.from([0])).maxRelDiff).toBe(Infinity);
    expect(paramDiff(Float32Array.from([Number.NaN]), Float32Array.from([1])).maxAbsDiff).toBeNaN();
    expect(() => paramDiff(a, b.subarray(1))).toThrow(ShapeError);
  });
});
