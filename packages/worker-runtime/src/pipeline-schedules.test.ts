import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '@peertrain/engine';
import type { RunConfigInput } from '@peertrain/protocol';
import { bubbleTheory } from '@peertrain/schedules';
import { memoryCluster } from './test-cluster.ts';

// The schedules with chunks and split backward end to end over the in-memory transport: interleaved
// 1F1B (each peer holds V non-contiguous chunks; micro-batches wrap from the last peer back to the
// first for the next chunk) and zb-h1 (backward split into input and weight parts). After 3 steps
// each must equal the single worker on the whole batch, with and without recomputation.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const base: RunConfigInput = {
  strategy: 'pipeline',
  dataset: 'synthetic',
  model: 'deepMlp', // 9 layers: enough for 3 peers x 2 chunks
  steps: 3,
  batch: 12,
  lr: 0.05,
  seed: 5,
  evalEvery: 0,
  reference: true,
};

describe('interleaved and zero-bubble schedules over the in-memory transport', () => {
  const cases: [RunConfigInput['schedule'], number, number, number, boolean][] = [
    ['zb-h1', 3, 4, 1, false],
    ['zb-h1', 3, 4, 1, true],
    ['interleaved', 2, 4, 2, false],
    ['interleaved', 3, 3, 2, false],
    ['interleaved', 3, 4, 2, true], // M not a multiple of P
  ];
  for (const [schedule, p, m, v, recompute] of cases) {
    const name = `${p} stages, ${schedule} M=${m}${v > 1 ? ` V=${v}` : ''}${recompute ? ' recompute' : ''}`;
    it(`${name} equals the single worker after 3 steps`, async () => {
      const { coord, workers } = memoryCluster(p, `sch-${schedule}-${p}-${m}-${recompute}`, cleanups);
      const before = tf.memory().numTensors;
      const report = await coord.run(
        { ...base, workers: p, schedule, microBatches: m, virtualStages: v, recompute },
        { waitMs: 30_000 },
      );
      expect(report.errors).toEqual([]);
      expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(report.reference!.referenceLoss - report.finalLoss)).toBeLessThan(1e-5);
      const pl = report.pipeline!;
      expect(pl.schedule).toBe(schedule);
      expect(pl.bubbleTheory).toBeCloseTo(bubbleTheory(schedule ?? '1f1b', p, m, v), 12);
      expect(pl.perStage).toHaveLength(p);
      if (v > 1) {
        // chunk c on peer c mod P: the chunks cover the layers in order, round the ring
        const chunks = pl.perStage.map((s) => s.chunks!);
        const order = Array.from({ length: p * v }, (_, c) => chunks[c % p]![Math.floor(c / p)]!);
        expect(order[0]![0]).toBe(0);
        expect(order.at(-1)![1]).toBe(8);
        for (let c = 1; c < order.length; c++) expect(order[c]![0]).toBe(order[c - 1]![1] + 1);
        // The dashboard's peer views and each worker's own status show the same chunks.
        const halfOpen = (cs: [number, number][]) => cs.map(([a, b]) => ({ first: a, end: b + 1 }));
        const views = new Map(coord.view().peers.map((v) => [v.peerId, v.stage?.chunks]));
        for (const s of pl.perStage) expect(views.get(s.peerId)).toEqual(halfOpen(s.chunks!));
        const own = new Map(workers.map((w) => [w.status().peerId, w.status().stage?.chunks]));
        for (const s of pl.perStage) expect(own.get(s.peerId)).toEqual(halfOpen(s.chunks!));
      }
      // Interleaved compute spans say which of the peer's chunks ran them; no other schedule's do.
      const computes = coord.trace().traceEvents.filter((e) => e.ph === 'X' && e.cat === 'compute');
      const chunks = new Set(
        computes.filter((e) => /^(forward|backward) /.test(e.name)).map((e) => e.args?.chunk),
      );
      expect([...chunks].sort()).toEqual(v > 1 ? Array.from({ length: v }, (_, k) => k) : [undefined]);
      for (const s of pl.perStage) {
        expect(s.peakActivationBytes).toBeGreaterThan(0);
        if (recompute) expect(s.peakActivationBytes).toBeLessThanOrEqual(s.peakActivationBytesNoRecompute);
      }
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    });
  }
});
