import { describe, expect, it } from 'vitest';
import type { RunConfigInput } from '@peertrain/protocol';
import { firstBitDifference, runCluster } from './testing.ts';
import type { ClusterResult } from './testing.ts';

// config.compress on the all-reduce based methods, on real workers (see testing.ts): each codec
// trains, the workers stay bit-identical after every exchange, and the bytes on the wire (the
// meshes' counts, frames included) shrink as the codec promises.

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  workers: 3,
  steps: 30,
  batch: 16,
  lr: 0.05,
  seed: 5,
  optimizer: { kind: 'sgd', momentum: 0.9 },
};

function expectIdenticalEveryStep(run: ClusterResult): void {
  run.params.forEach(([first, ...rest], step) => {
    for (const [i, p] of rest.entries()) {
      const at = firstBitDifference(p, first!);
      if (at >= 0) expect.fail(`step ${step}: worker ${i + 1} differs from worker 0 at element ${at}`);
    }
  });
}

const meanLoss = (losses: (number | null)[][]): number => {
  const all = losses.flat() as number[];
  return all.reduce((a, b) => a + b, 0) / all.length;
};

/** Bytes all workers sent over the whole run. */
const totalBytes = (run: ClusterResult): number => run.bytesSent.flat().reduce((a, b) => a + b, 0);

describe('compressed exchange', () => {
  // The fp32 run every codec is measured against, trained once.
  let fp32: Promise<ClusterResult> | null = null;
  const limits = { fp16: 0.51, int8: 0.26, 'topk:0.01': 0.03, 'powersgd:2': 0.1 } as const;
  for (const [compress, limit] of Object.entries(limits)) {
    it(`${compress} trains the all-reduce method, workers identical, at <= ${limit} of fp32's bytes`, async () => {
      fp32 ??= runCluster(base);
      const run = await runCluster({ ...base, compress });
      expectIdenticalEveryStep(run);
      const first = meanLoss(run.losses.slice(0, 4));
      const last = meanLoss(run.losses.slice(-8));
      expect(last, `${compress}: loss ${first} -> ${last}`).toBeLessThan(first * 0.6);
      const ratio = totalBytes(run) / totalBytes(await fp32);
      expect(ratio, `${compress} sent ${ratio} of fp32's bytes`).toBeLessThanOrEqual(limit);
    });
  }

  it("compresses diloco's pseudo-gradients; every worker holds the same G after each round", async () => {
    const cfg: RunConfigInput = { ...base, sync: 'diloco', innerSteps: 5, outerLr: 1, outerMomentum: 0 };
    const plain = await runCluster(cfg);
    const run = await runCluster({ ...cfg, compress: 'int8' });
    for (const step of [4, 9, 14, 19, 24, 29]) {
      const [first, ...rest] = run.params[step]!;
      for (const p of rest) expect(firstBitDifference(p, first!)).toBe(-1);
    }
    expect(meanLoss(run.losses.slice(-8))).toBeLessThan(meanLoss(run.losses.slice(0, 4)) * 0.6);
    expect(totalBytes(run) / totalBytes(plain)).toBeLessThanOrEqual(0.26);
  });
});
