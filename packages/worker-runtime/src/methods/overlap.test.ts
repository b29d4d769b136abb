import { describe, expect, it } from 'vitest';
import type { RunConfigInput } from '@peertrain/protocol';
import { commOverlap } from '@peertrain/telemetry';
import type { Span } from '@peertrain/telemetry';
import { firstBitDifference, runCluster } from './testing.ts';
import { bucketRanges } from './overlap.ts';

// Overlapped synchronous data parallelism (config.overlap) on 3 real workers over the in-memory
// transport, without the coordinator: the same bits as the plain all-reduce after every step, and
// a trace in which buckets are on the wire while backward spans are still to come.

const base: RunConfigInput = {
  dataset: 'synthetic',
  batch: 8,
  lr: 0.05,
  seed: 11,
  optimizer: { kind: 'sgd', momentum: 0.9 },
  workers: 3,
  steps: 3,
};

/** Spans of one step on one worker. */
const ofStep = (spans: readonly Span[], step: number): Span[] => spans.filter((s) => s.step === step);

describe('bucketRanges', () => {
  // The CNN's layers: conv [0, 80), relu, pool, conv [80, 1248), relu, pool, flatten, dense [1248, 9098).
  const cnnStarts = [0, 80, 80, 80, 1248, 1248, 1248, 1248];
  it('cuts along the layers, each layer in pieces of at most B, so the first layer is a bucket of its own', () => {
    expect(bucketRanges(9098, 2048, cnnStarts)).toEqual([
      [0, 80],
      [80, 1248],
      [1248, 3296],
      [3296, 5344],
      [5344, 7392],
      [7392, 9098],
    ]);
    // A model of one layer, or the ring's buckets: every B values.
    expect(bucketRanges(5000, 2048, [0])).toEqual([
      [0, 2048],
      [2048, 4096],
      [4096, 5000],
    ]);
    expect(bucketRanges(9098, 2048, null)).toEqual(bucketRanges(9098, 2048, [0]));
    expect(bucketRanges(9098, 65_536, cnnStarts)).toEqual([
      [0, 80],
      [80, 1248],
      [1248, 9098],
    ]);
  });
});

describe('allreduce with overlap', () => {
  // cnn: 9,098 parameters in buckets of at most 1,000 along the layers (11 buckets, the last
  // layers' first); mlp: 7,000-element buckets, each layer's last one shorter than the rest.
  for (const [model, bucketElems] of [
    ['cnn', 1000],
    ['mlp', 7000],
  ] as const) {
    it(`${model}: every worker holds the plain all-reduce's bits after every step`, async () => {
      const config = { ...base, model, bucketElems };
      const plain = await runCluster(config);
      const overlapped = await runCluster({ ...config, overlap: true });
      for (let step = 0; step < 3; step++) {
        for (let r = 0; r < 3; r++) {
          const at = firstBitDifference(overlapped.params[step]![r]!, plain.params[step]![r]!);
          if (at >= 0) expect.fail(`step ${step}, worker ${r}: differs at element ${at}`);
          expect(overlapped.losses[step]![r]).toBe(plain.losses[step]![r]);
        }
      }
      // The same payload on the wire, in more messages. Neither model takes the ring at 3 workers
      // (collective's allReduceAlgorithm): the CNN's 9,098 gradients go direct, one message per
      // peer without overlap and one per bucket with it (10 extra to each of 2 peers); the MLP's
      // 101,770 go pairwise, 4 messages a worker without overlap and 4 per bucket with it (15 extra
      // buckets), where each bucket's own chunk may round one element differently. Only frame
      // headers (under 64 bytes each) and those elements differ.
      const extraMessages = model === 'cnn' ? 10 * 2 : 15 * 4;
      const rounding = model === 'cnn' ? 0 : 16 * 4;
      for (const [step, perWorker] of overlapped.bytesSent.entries())
        for (const [r, b] of perWorker.entries()) {
          const extra = b - plain.bytesSent[step]![r]!;
          expect(extra).toBeGreaterThan(0);
          expect(extra).toBeLessThanOrEqual(extraMessages * 64 + rounding);
        }
      // Two 3-worker CNN runs on the CPU backend: 3.4 s alone, over 60 s beside the end-to-end lanes.
    }, 180_000);
  }

  it('cnn: buckets reach the wire before the last backward span ends', async () => {
    const run = await runCluster({ ...base, model: 'cnn', bucketElems: 1000, overlap: true });
    for (const [r, spans] of run.spans.entries()) {
      for (let step = 0; step < 3; step++) {
        const s = ofStep(spans, step);
        const backward = s.filter((x) => x.kind === 'backward');
        expect(backward.length, `worker ${r} step ${step}: one backward span per layer`).toBe(8);
        expect(s.filter((x) => x.kind === 'forward')).toHaveLength(1);
        const lastBackwardEnd = Math.max(...backward.map((x) => x.startMs + x.durMs));
        // (reduce-scatter on the ring; the direct exchange has its all-gather only)
        const firstReduce = Math.min(
          ...s.filter((x) => x.kind === 'reduceScatter' || x.kind === 'allGather').map((x) => x.startMs),
        );
        expect(firstReduce, `worker ${r} step ${step}`).toBeLessThan(lastBackwardEnd);
        // ...and at least one bucket is fully reduced before it: messages moved between layers (fails
        // when the engine does not yield between layers).
        const firstGathered = Math.min(
          ...s.filter((x) => x.kind === 'allGather').map((x) => x.startMs + x.durMs),
        );
        expect(firstGathered, `worker ${r} step ${step}`).toBeLessThan(lastBackwardEnd);
        const { commMs, hiddenMs, exposedMs } = commOverlap(s);
        expect(commMs).toBeGreaterThan(0);
        expect(hiddenMs + exposedMs).toBeCloseTo(commMs, 9);
      }
    }
  });

  it('cnn in one bucket: nothing could hide, so the plain step runs (same bits, no per-layer spans)', async () => {
    const config = { ...base, model: 'cnn' as const, bucketElems: 65_536 }; // 9,098 parameters
    const plain = await runCluster(config);
    const overlapped = await runCluster({ ...config, overlap: true });
    for (let r = 0; r < 3; r++) {
      const at = firstBitDifference(overlapped.params[2]![r]!, plain.params[2]![r]!);
      if (at >= 0) expect.fail(`worker ${r}: differs at element ${at}`);
      const s = ofStep(overlapped.spans[r]!, 1);
      expect(s.filter((x) => x.kind === 'backward')).toHaveLength(0);
      expect(s.filter((x) => x.kind === 'compute')).toHaveLength(1);
    }
  });
});
