import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import { nodeCompute } from './test-cluster.ts';

// The warm-up (engine-compute.ts) runs the model on throwaway parameters before a session is
// ready: it must leave nothing behind that a run could see.
describe('session warm-up', () => {
  it('leaves the first step and the evaluation exactly as without it', async () => {
    const config = parseRunConfig({ dataset: 'synthetic', model: 'mlp', batch: 16, seed: 3, workers: 1 });
    const shards = [{ start: 0, count: 512 }];
    const run = { config, shard: shards[0]!, allShards: shards };
    const results = [];
    for (const warmUp of [false, true]) {
      const compute = await nodeCompute(undefined, { warmUp });
      const session = await compute.prepare(run, {});
      try {
        const params = session.initParams();
        const { loss, grads } = await session.gradients(params, 0, {});
        const evaluation = await session.evaluate(params, {});
        results.push({ loss, grads: Array.from(grads), evaluation });
      } finally {
        session.dispose();
      }
    }
    expect(results[1]).toEqual(results[0]);
  });
});
