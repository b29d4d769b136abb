import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Coordinator } from '@peertrain/coordinator';
import { tf } from '@peertrain/engine';
import type { RunConfigInput } from '@peertrain/protocol';
import { memoryCluster } from './test-cluster.ts';
import type { WorkerRuntime } from './types.ts';

// Data parallelism end to end in Node: a real coordinator and N real worker runtimes (engine,
// collectives, optimizer) over the in-memory transport. The distributed parameters must equal the
// single-worker reference at batch N*b on the same seed, which each run trains on rank 0.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function cluster(n: number, room = 'dp'): { coord: Coordinator; workers: WorkerRuntime[] } {
  return memoryCluster(n, room, cleanups);
}

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  steps: 6,
  batch: 8,
  lr: 0.05,
  seed: 11,
  evalEvery: 3,
  reference: true,
  // Small buckets so the bucketed, chunked path is what runs.
  bucketElems: 10_000,
};

describe('data parallelism over the in-memory transport', () => {
  for (const sync of ['allreduce', 'ps'] as const) {
    for (const n of [1, 2, 3]) {
      it(`${sync}, ${n} workers equal the single worker at batch ${n}x8`, async () => {
        const { coord } = cluster(n);
        const report = await coord.run({ ...base, sync, workers: n }, { waitMs: 30_000 });
        expect(report.loss).toHaveLength(6);
        expect(report.reference).toBeDefined();
        expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
        // The reference's last loss is the distributed run's last loss, recomputed.
        expect(Math.abs(report.reference!.referenceLoss - report.finalLoss)).toBeLessThan(1e-4);
        expect(report.evals.map((e) => e.step)).toEqual([3, 6]);
        if (n > 1) expect(report.bytesSent).toBeGreaterThan(0);
        else expect(report.bytesSent).toBe(0);
      });
    }
  }

  it('diloco with H = 1, outer lr 1, no outer momentum equals the single worker through the coordinator', async () => {
    const { coord } = cluster(2);
    const report = await coord.run(
      { ...base, sync: 'diloco', innerSteps: 1, outerLr: 1, outerMomentum: 0, workers: 2 },
      { waitMs: 30_000 },
    );
    expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(report.bytesSent).toBeGreaterThan(0);
  });

  it('diloco evaluates only at round ends: a mid-round evaluation waits for the next round', async () => {
    const { coord } = cluster(2);
    const report = await coord.run(
      { ...base, sync: 'diloco', innerSteps: 4, workers: 2, steps: 10, evalEvery: 3, reference: false },
      { waitMs: 30_000 },
    );
    // Due at 3, 6, 9 (and the last, 10): 3 waits for the round ending at 4, 6 for 8, 9 for 10.
    expect(report.evals.map((e) => e.step)).toEqual([4, 8, 10]);
  });

  it('learns: loss falls and accuracy beats chance on the synthetic set', async () => {
    const { coord } = cluster(2);
    const report = await coord.run({
      ...base,
      sync: 'allreduce',
      workers: 2,
      steps: 40,
      reference: false,
      evalEvery: 0,
    });
    expect(report.finalLoss).toBeLessThan(report.loss[0]!.loss * 0.7);
    expect(report.testAccuracy).toBeGreaterThan(0.5);
  });

  it('keeps tf.memory().numTensors flat across runs', async () => {
    const { coord } = cluster(2);
    await coord.run({ ...base, workers: 2, steps: 3, reference: false });
    const before = tf.memory().numTensors;
    await coord.run({ ...base, workers: 2, steps: 12, reference: false });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("counts each run's bytes from its own start, not since the tab opened", async () => {
    const { coord } = cluster(2);
    const first = await coord.run({ ...base, workers: 2, steps: 3, reference: false });
    const second = await coord.run({ ...base, workers: 2, steps: 3, reference: false });
    // The same run twice sends the same bytes; counted since the tab opened, the second doubled.
    expect(first.bytesSent).toBeGreaterThan(0);
    expect(second.bytesSent).toBe(first.bytesSent);
    expect(second.workers.map((w) => w.bytesSent)).toEqual(first.workers.map((w) => w.bytesSent));
  });
});

describe('stopping at a target accuracy', () => {
  const target: RunConfigInput = { ...base, steps: 40, evalEvery: 2, reference: false, lr: 0.1 };

  for (const sync of ['allreduce', 'ps'] as const) {
    it(`${sync}: ends at the evaluation that reaches it, with that step's parameters and no error`, async () => {
      const { coord, workers } = cluster(3, `target-${sync}`);
      const utilization: number[] = [];
      coord.onEvent((e) => e.type === 'progress' && utilization.push(e.computeUtilization ?? NaN));
      const model = new Promise<string>((resolve) =>
        coord.onEvent((e) => e.type === 'model' && resolve(e.paramsBase64)),
      );
      // Chance is 0.1 on the synthetic set: a low target is reached within the first evaluations.
      const report = await coord.run(
        { ...target, sync, workers: 3, targetAccuracy: 0.3 },
        { waitMs: 30_000 },
      );
      const t = report.target!;
      expect(t.reached).toBe(true);
      expect(t.step).toBeLessThan(40);
      expect(t.step! % 2).toBe(0);
      const reaching = report.evals.filter((e) => e.accuracy >= 0.3);
      expect(reaching.map((e) => e.step)).toEqual([t.step]); // the first one ends the run
      expect(report.evals[report.evals.length - 1]!.step).toBe(t.step);
      expect(report.testAccuracy).toBe(reaching[0]!.accuracy);
      expect(report.loss).toHaveLength(t.step!);
      expect(t.samplesToTarget).toBe(t.step! * 3 * 8);
      expect(t.bytesToTarget).toBeGreaterThan(0);
      expect(t.bytesToTarget).toBeLessThanOrEqual(report.bytesSent);
      expect(t.timeToTargetMs).toBeGreaterThan(0);
      expect(report.errors).toEqual([]);
      expect(report.computeUtilization).toBeGreaterThan(0);
      expect(utilization).toHaveLength(t.step!); // one progress event per step, each with the share so far
      expect(utilization[utilization.length - 1]).toBeCloseTo(report.computeUtilization!, 12);
      expect(report.workers.every((w) => w.computeUtilization! > 0 && w.computeUtilization! <= 1)).toBe(true);
      // The exported model is the one of the target's step: the whole model, every parameter.
      const trained = coord.trainedModel()!;
      expect(trained.testAccuracy).toBe(report.testAccuracy);
      expect((await model).length).toBeGreaterThan(0);
      // Every worker stops cleanly and is free for the next run.
      await vi.waitFor(() => expect(workers.map((w) => w.status().phase)).toEqual(['idle', 'idle', 'idle']));
      expect(workers.every((w) => w.status().lastError === null)).toBe(true);
      const next = await coord.run({ ...base, sync, workers: 3, steps: 2, reference: false, evalEvery: 0 });
      expect(next.loss).toHaveLength(2);
    });
  }

  it('runs every step when the target is never reached, and says so', async () => {
    const { coord } = cluster(2, 'target-never');
    const report = await coord.run(
      { ...target, workers: 2, steps: 6, targetAccuracy: 0.999 },
      { waitMs: 30_000 },
    );
    expect(report.loss).toHaveLength(6);
    expect(report.evals.map((e) => e.step)).toEqual([2, 4, 6]);
    expect(report.target).toEqual({
      accuracy: 0.999,
      reached: false,
      step: null,
      timeToTargetMs: null,
      samplesToTarget: null,
      bytesToTarget: null,
    });
    expect(report.errors).toEqual([]);
  });
});
