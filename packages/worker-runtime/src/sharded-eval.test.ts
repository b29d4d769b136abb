import { afterEach, describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { partRows } from './sharded-eval.ts';
import { memoryCluster, nodeCompute } from './test-cluster.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('partRows', () => {
  it('splits the rows into contiguous parts that cover them once', () => {
    for (const [count, of] of [
      [10, 3],
      [2, 3],
      [10_000, 4],
    ] as const) {
      const parts = Array.from({ length: of }, (_, index) => partRows(count, { index, of }));
      expect(parts[0]![0]).toBe(0);
      expect(parts[of - 1]![1]).toBe(count);
      for (let i = 1; i < of; i++) expect(parts[i]![0]).toBe(parts[i - 1]![1]);
    }
  });
});

describe('sharded evaluation', () => {
  const base: RunConfigInput = {
    dataset: 'synthetic',
    model: 'mlp',
    batch: 8,
    lr: 0.1,
    seed: 5,
    evalEvery: 4,
    reference: false,
    workers: 4,
  };

  for (const sync of ['allreduce', 'diloco'] as const) {
    // 4 workers: ranks 1 and 3 are rank 0's ring neighbours, rank 2 is not (its part needs a link).
    it(`${sync}, 4 workers: each evaluates a quarter, rank 0 reports the whole split's result`, async () => {
      const { coord } = memoryCluster(4, `sharded-${sync}`, cleanups);
      const input: RunConfigInput = {
        ...base,
        sync,
        steps: 8,
        ...(sync === 'diloco' ? { innerSteps: 4 } : {}),
      };
      const report = await coord.run(input, { waitMs: 30_000 });
      expect(report.evals.map((e) => e.step)).toEqual([4, 8]);
      // The final parameters evaluated on the whole split in one piece, as rank 0 did before.
      const compute = await nodeCompute();
      const config = parseRunConfig(input);
      const shards = [{ start: 0, count: 1000 }];
      const session = await compute.prepare({ config, shard: shards[0]!, allShards: shards }, {});
      try {
        const whole = await session.evaluate(coord.trainedModel()!.params, {});
        const last = report.evals[report.evals.length - 1]!;
        expect(last.accuracy).toBe(whole.accuracy);
        // (the report keeps the accuracy only: equal hits; the loss sums per part, as rank 0 adds them)
      } finally {
        session.dispose();
        compute.dispose();
      }
    });
  }
});
