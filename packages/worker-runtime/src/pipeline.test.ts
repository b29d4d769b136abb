import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinator, median } from '@peertrain/coordinator';
import type { Coordinator } from '@peertrain/coordinator';
import { tf } from '@peertrain/engine';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { parseChromeTrace } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { nodeCompute } from './test-cluster.ts';
import { createWorkerRuntime } from './runtime.ts';

// Pipeline and hybrid parallelism end to end in Node: a real coordinator and real worker runtimes
// over the in-memory transport. Every schedule, with and without recomputation, must give the
// parameters of the single worker on the whole batch (rank 0 gathers the stages and trains it).

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function cluster(n: number, room = 'pp', bubbleHistory?: number): Coordinator {
  const net = createMemoryNetwork();
  const coord = createCoordinator({
    mesh: createMesh(memoryTransport(net, coordinatorPeerId(room))),
    room,
    ...(bubbleHistory !== undefined ? { bubbleHistory } : {}),
  });
  cleanups.push(() => coord.dispose());
  for (let i = 0; i < n; i++) {
    const w = createWorkerRuntime({
      mesh: createMesh(memoryTransport(net, workerPeerId(room, `w${i}`), { maxMessageSize: 16 * 1024 })),
      room,
      coordinatorId: coordinatorPeerId(room),
      compute: ({ signal }) => nodeCompute(signal),
    });
    cleanups.push(() => w.leave('test over'));
  }
  return coord;
}

const base: RunConfigInput = {
  strategy: 'pipeline',
  dataset: 'synthetic',
  model: 'deepMlp',
  steps: 4,
  batch: 12,
  lr: 0.05,
  seed: 5,
  evalEvery: 2,
  reference: true,
};

describe('pipeline parallelism over the in-memory transport', () => {
  const cases: [RunConfigInput['schedule'], number, boolean][] = [
    ['naive', 1, false],
    ['gpipe', 4, false],
    ['gpipe', 4, true],
    ['1f1b', 4, false],
    ['1f1b', 3, true],
  ];
  for (const [schedule, m, recompute] of cases) {
    it(`3 stages, ${schedule} M=${m}${recompute ? ' recompute' : ''} equal the single worker`, async () => {
      const coord = cluster(3);
      const report = await coord.run(
        { ...base, workers: 3, schedule, microBatches: m, recompute },
        { waitMs: 30_000 },
      );
      expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
      expect(Math.abs(report.reference!.referenceLoss - report.finalLoss)).toBeLessThan(1e-4);
      expect(report.evals.map((e) => e.step)).toEqual([2, 4]);
      const pl = report.pipeline!;
      expect(pl.stages).toBe(3);
      expect(pl.bubbleTheory).toBeCloseTo(2 / (m + 2), 10);
      expect(pl.bubbleMeasured).toBeGreaterThan(0);
      // the stages cover the model's 9 layers, contiguous
      expect(pl.perStage.map((s) => s.layers)).toHaveLength(3);
      expect(pl.perStage[0]!.layers[0]).toBe(0);
      expect(pl.perStage[2]!.layers[1]).toBe(8);
      for (const s of pl.perStage) {
        expect(s.peakActivationBytes).toBeGreaterThan(0);
        if (recompute) expect(s.peakActivationBytes).toBeLessThanOrEqual(s.peakActivationBytesNoRecompute);
        else expect(s.peakActivationBytes).toBe(s.peakActivationBytesNoRecompute);
      }
      const trace = parseChromeTrace(JSON.parse(JSON.stringify(coord.trace())));
      const kinds = new Set(trace.traceEvents.filter((e) => e.ph === 'X').map((e) => e.name.split(' ')[0]));
      expect(kinds).toContain('forward');
      expect(kinds).toContain('backward');
      expect(kinds).toContain('send');
    });
  }

  it('keeps the last bubbleHistory per-step bubbles in the view; the measured bubble is the median of every step after the warm-up', async () => {
    const history = 4;
    const coord = cluster(2, 'ppb', history);
    // Every step's bubble as the view showed it when the step landed.
    const seen = new Map<number, number>();
    const off = coord.subscribe((v) => {
      const last = v.run.pipeline?.bubbles.at(-1);
      if (last) seen.set(last.step, last.bubble);
    });
    const steps = 12;
    const report = await coord.run({ ...base, workers: 2, steps, evalEvery: 0, reference: false });
    off();
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: steps }, (_, i) => i));
    const pv = coord.view().run.pipeline!;
    expect(pv.bubbles.map((b) => b.step)).toEqual([8, 9, 10, 11]);
    expect(pv.bubbles.map((b) => b.bubble)).toEqual([8, 9, 10, 11].map((s) => seen.get(s)));
    // Steps 0-2 warm up; the median covers steps 3-11, including those the view no longer holds.
    const after = [...seen].filter(([s]) => s >= 3).map(([, b]) => b);
    expect(pv.bubbleMeasured).toBe(median(after));
    expect(report.pipeline!.bubbleMeasured).toBe(median(after));
  });

  it('a user partition is used as given and a bad one is refused with the reason', async () => {
    const coord = cluster(2);
    const report = await coord.run({ ...base, workers: 2, partition: '0-1,2-8', reference: false });
    expect(report.pipeline!.perStage.map((s) => s.layers)).toEqual([
      [0, 1],
      [2, 8],
    ]);
    // rank 0 handed the whole trained model to the coordinator (for export)
    const trained = coord.trainedModel()!;
    expect(trained.model).toBe('deepMlp');
    expect(trained.params.length).toBe(
      784 * 256 + 256 + 256 * 128 + 128 + 128 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
    );
    expect(trained.testAccuracy).toBe(report.testAccuracy);
    await expect(coord.run({ ...base, workers: 2, partition: '0-3,5-8' })).rejects.toThrow(/contiguous/);
  });

  it('hybrid: 2 replicas of 2 stages equal the single worker at batch 2b', async () => {
    const coord = cluster(4, 'hy');
    const report = await coord.run(
      { ...base, strategy: 'hybrid', replicas: 2, workers: 4, microBatches: 3 },
      { waitMs: 30_000 },
    );
    expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(report.pipeline!.replicas).toBe(2);
  });

  it('keeps tf.memory().numTensors flat across runs', async () => {
    const coord = cluster(2);
    await coord.run({ ...base, workers: 2, steps: 2, reference: false });
    const before = tf.memory().numTensors;
    await coord.run({ ...base, workers: 2, steps: 6, reference: false });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops at a target accuracy: rank 0 gathers the stages, evaluates, and every stage stops cleanly', async () => {
    const coord = cluster(3, 'pp-target');
    const cfg = {
      ...base,
      model: 'mlp' as const,
      workers: 3,
      schedule: '1f1b' as const,
      steps: 30,
      reference: false,
    };
    const report = await coord.run({ ...cfg, targetAccuracy: 0.3 }, { waitMs: 30_000 });
    const t = report.target!;
    expect(t.reached).toBe(true);
    expect(t.step).toBeLessThan(30);
    expect(report.loss).toHaveLength(t.step!);
    expect(report.testAccuracy).toBeGreaterThanOrEqual(0.3);
    expect(coord.trainedModel()!.testAccuracy).toBe(report.testAccuracy);
    expect(report.errors).toEqual([]);
    // The stages are free again: the next run takes them.
    const next = await coord.run({ ...cfg, steps: 2, evalEvery: 0 }, { waitMs: 30_000 });
    expect(next.loss).toHaveLength(2);
  });
});
