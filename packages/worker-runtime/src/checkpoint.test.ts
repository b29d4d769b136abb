import { afterEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '@peertrain/coordinator';
import { CheckpointError, checkpointFromBase64 } from '@peertrain/protocol';
import type { Checkpoint, CoordinatorEvent, RunConfigInput } from '@peertrain/protocol';
import { memoryCluster } from './test-cluster.ts';

// Checkpoints end to end in Node: a real coordinator and worker runtimes over the in-memory
// transport. A run stopped after the checkpoint at step 6 of 12 and resumed from it ends with the
// parameters of the run that was never stopped, bit for bit (fp32, same summation order).

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  workers: 2,
  steps: 12,
  batch: 8,
  lr: 0.05,
  seed: 5,
  evalEvery: 0,
  bucketElems: 10_000,
};

function checkpointOf(event: Extract<CoordinatorEvent, { type: 'checkpoint' }>): Checkpoint {
  return checkpointFromBase64(event.manifest, event.blobBase64);
}

/** Runs `config` and stops it once the checkpoint after `stopAt` steps is out; resolves with it. */
async function stoppedAt(coord: Coordinator, config: RunConfigInput, stopAt: number): Promise<Checkpoint> {
  const stop = new AbortController();
  let taken: Checkpoint | null = null;
  const off = coord.onEvent((e) => {
    if (e.type !== 'checkpoint' || taken) return;
    if (e.manifest.step === stopAt) {
      taken = checkpointOf(e);
      stop.abort();
    }
  });
  try {
    await expect(coord.run(config, { waitMs: 30_000, signal: stop.signal })).rejects.toThrow();
  } finally {
    off();
  }
  expect(taken).not.toBeNull();
  return taken!;
}

describe('checkpoint and resume over the in-memory transport', () => {
  const cases: [string, RunConfigInput][] = [
    ['allreduce, sgd momentum 0.9', { sync: 'allreduce', optimizer: { kind: 'sgd', momentum: 0.9 } }],
    ['ps, adam', { sync: 'ps', optimizer: { kind: 'adam' } }],
  ];
  for (const [name, extra] of cases) {
    it(`${name}: stopped at step 6 of 12 and resumed equals the uninterrupted run`, async () => {
      const { coord } = memoryCluster(2, 'ck', cleanups);
      const config = { ...base, ...extra };
      await coord.run(config, { waitMs: 30_000 });
      const reference = coord.trainedModel()!.params.slice();

      const cp = await stoppedAt(coord, { ...config, checkpointEvery: 3 }, 6);
      expect(cp.step).toBe(6);
      expect(cp.params).not.toEqual(reference);

      const report = await coord.run(config, { waitMs: 30_000, resume: cp });
      // Only the steps after the checkpoint ran.
      expect(report.loss.map((l) => l.step)).toEqual([6, 7, 8, 9, 10, 11]);
      expect(coord.trainedModel()!.params).toEqual(reference);
    });
  }

  it('refuses a checkpoint of another run configuration with CheckpointError, before taking any peer', async () => {
    const { coord } = memoryCluster(2, 'ck2', cleanups);
    const cp = await stoppedAt(coord, { ...base, checkpointEvery: 2 }, 2);
    const other = coord.run({ ...base, model: 'deepMlp' }, { waitMs: 30_000, resume: cp });
    await expect(other).rejects.toThrow(CheckpointError);
    await expect(other).rejects.toThrow(/model: checkpoint "mlp", run "deepMlp"/);
  });
});
