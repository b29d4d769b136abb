import { describe, expect, it } from 'vitest';
import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import { pipelineSettings } from './args.ts';
import {
  caseLabel,
  findRow,
  headline,
  maxPeak,
  pipelineCases,
  partitionFor,
  pipelineConfig,
  recomputeCosts,
  samplesPerSec,
  stepMs,
  zeroSkipping,
} from './pipeline-cases.ts';
import type { OkRow } from './pipeline-cases.ts';
import { key, okRow } from './pipeline.fixture.ts';
import type { PipelineRow } from './report.ts';

describe('pipelineCases', () => {
  it('runs naive at M = 1 and every schedule at every M for each P, then the recompute pair', () => {
    const s = pipelineSettings(false);
    const cases = pipelineCases(s);
    // 3 x (1 + 4 schedules x 3 M) grid runs + 2 recompute runs + the zeros-sent run.
    expect(cases).toHaveLength(42);
    expect(cases.slice(0, 9).map(caseLabel)).toEqual([
      'P=2 naive M=1',
      'P=2 gpipe M=4',
      'P=2 1f1b M=4',
      'P=2 interleaved V=2 M=4',
      'P=2 zb-h1 M=4',
      'P=2 gpipe M=8',
      'P=2 1f1b M=8',
      'P=2 interleaved V=2 M=8',
      'P=2 zb-h1 M=8',
    ]);
    expect(cases.filter((c) => c.schedule === 'naive').every((c) => c.microBatches === 1)).toBe(true);
    expect(cases.filter((c) => c.schedule === 'interleaved').every((c) => c.virtualStages === 2)).toBe(true);
    expect(cases.slice(39)).toEqual([
      key(4, '1f1b', 8, false, 12),
      key(4, '1f1b', 8, true, 12),
      { ...key(4, '1f1b', 8, false, 12), skipZeros: false },
    ]);
    expect(parseRunConfig(pipelineConfig(cases[41]!, s)).activationSkipZeros).toBe(false);
    expect(parseRunConfig(pipelineConfig(cases[40]!, s)).activationSkipZeros).toBe(true);
    expect(cases.slice(0, 39).every((c) => c.steps === 6 && !c.recompute)).toBe(true);
  });

  it('leaves interleaved out where M < P', () => {
    const s = { ...pipelineSettings(false), stages: [4], microBatches: [2, 4], recompute: [] };
    expect(pipelineCases(s).map(caseLabel)).toEqual([
      'P=4 naive M=1',
      'P=4 gpipe M=2',
      'P=4 1f1b M=2',
      'P=4 zb-h1 M=2',
      'P=4 gpipe M=4',
      'P=4 1f1b M=4',
      'P=4 interleaved V=2 M=4',
      'P=4 zb-h1 M=4',
    ]);
  });

  it('keeps --pipeline-steps for the grid and a small quick plan', () => {
    expect(
      pipelineCases(pipelineSettings(false, 9))
        .slice(0, 39)
        .every((c) => c.steps === 9),
    ).toBe(true);
    const quick = pipelineCases(pipelineSettings(true));
    expect(quick.map(caseLabel)).toEqual([
      'P=4 naive M=1',
      'P=4 gpipe M=8',
      'P=4 1f1b M=8',
      'P=4 interleaved V=2 M=8',
      'P=4 zb-h1 M=8',
      'P=4 1f1b M=8',
      'P=4 1f1b M=8 +recompute',
      'P=4 1f1b M=8 zeros sent',
    ]);
  });

  it('refuses a P without a partition and an M the batch cannot hold, listing each', () => {
    const s = { ...pipelineSettings(false), stages: [2, 5], microBatches: [4, 256] };
    try {
      pipelineCases({ ...s, recompute: [{ stages: 6, schedule: 'naive', microBatches: 2 }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        'no partition for P=5',
        'no partition for P=5 V=2',
        'M=256 micro-batches do not fit a batch of 128',
        'no partition for P=6',
        'naive runs M=1, not 2',
      ]);
    }
  });
});

describe('pipelineConfig', () => {
  it('gives every interleaved peer as many wide dense layers as its 1f1b stage has', () => {
    // Layers 0, 2, 4, 6 are the 1024-wide dense ones; chunk c sits on the peer c mod P.
    const wide = (partition: string, peers: number): number[] => {
      const out = new Array<number>(peers).fill(0);
      partition.split(',').forEach((r, c) => {
        const [a = 0, b = 0] = r.split('-').map(Number);
        for (const l of [0, 2, 4, 6]) if (l >= a && l <= b) out[c % peers]! += 1;
      });
      return out;
    };
    for (const p of [2, 3, 4])
      expect(wide(partitionFor(p, 2) ?? '', p)).toEqual(wide(partitionFor(p, 1) ?? '', p));
    expect(partitionFor(5, 1)).toBeNull();
    expect(partitionFor(2, 3)).toBeNull();
  });

  it('is a valid pipeline run of wideMlp with the explicit partition of (P, V)', () => {
    const s = pipelineSettings(false);
    for (const c of pipelineCases(s)) {
      const config = parseRunConfig(pipelineConfig(c, s));
      expect(config).toMatchObject({
        strategy: 'pipeline',
        model: 'wideMlp',
        dataset: 'synthetic',
        workers: c.stages,
        steps: c.steps,
        schedule: c.schedule,
        microBatches: c.microBatches,
        virtualStages: c.virtualStages,
        recompute: c.recompute,
        batch: 128,
        backend: 'wasm',
        evalEvery: 0,
      });
      // Every layer 0..8 in exactly one chunk (P x V of them), in order.
      const ranges = config.partition.split(',').map((r) => r.split('-').map(Number));
      expect(ranges).toHaveLength(c.stages * c.virtualStages);
      expect(ranges.flat()[0]).toBe(0);
      expect(ranges.at(-1)?.[1]).toBe(8);
      ranges.slice(1).forEach((r, i) => expect(r[0]).toBe((ranges[i]?.[1] ?? -2) + 1));
    }
  });
});

describe('summaries', () => {
  const s = pipelineSettings(false);
  const rows: PipelineRow[] = [
    okRow(key(4, 'gpipe', 8), [900_000, 800_000, 700_000, 1_500_000], 1000),
    okRow(key(4, '1f1b', 8), [460_000, 400_000, 260_000, 200_000], 1100),
    { ...key(4, '1f1b', 8, false, 12), ok: false, error: 'PhaseTimeoutError: step 3' },
    okRow(key(4, '1f1b', 8, true, 12), [260_000, 250_000, 150_000, 120_000], 1200),
  ];

  it('maxPeak names the stage with the most activation bytes', () => {
    expect(maxPeak(rows[0] as OkRow)).toEqual({ stage: 3, bytes: 1_500_000 });
    expect(maxPeak(okRow(key(2, 'naive', 1), [], 10)).bytes).toBeNaN();
  });

  it('findRow takes the successful run with the most steps, or the given step count', () => {
    expect(findRow(rows, key(4, '1f1b', 8))?.steps).toBe(6);
    expect(findRow(rows, key(4, '1f1b', 8), 12)).toBeNull();
    expect(findRow(rows, key(4, '1f1b', 8, true))?.steps).toBe(12);
  });

  it('prefers the steady step time and throughput when measured', () => {
    const plain = okRow(key(2, 'gpipe', 4), [1], 500);
    expect(stepMs(plain)).toBe(500);
    expect(samplesPerSec(plain)).toBe(128);
    const steady = okRow(key(2, 'gpipe', 4), [1], 500, { steadyStepMs: 400, steadySamplesPerSec: 320 });
    expect(stepMs(steady)).toBe(400);
    expect(samplesPerSec(steady)).toBe(320);
  });

  it('recomputeCosts needs both runs of the pair at recomputeSteps', () => {
    expect(recomputeCosts(rows, s)).toEqual([]);
    const both = [...rows, okRow(key(4, '1f1b', 8, false, 12), [460_000, 400_000, 260_000, 200_000], 1000)];
    const [cost, ...rest] = recomputeCosts(both, s);
    expect(rest).toEqual([]);
    expect(cost).toMatchObject({
      stages: 4,
      schedule: '1f1b',
      microBatches: 8,
      stepMs: 1000,
      stepMsRecompute: 1200,
      stage0PeakBytes: 460_000,
      stage0PeakBytesRecompute: 260_000,
      maxPeakBytes: 460_000,
      maxPeakBytesRecompute: 260_000,
    });
    expect(cost?.stepIncrease).toBeCloseTo(0.2, 12);
    expect(cost?.stage0PeakDecrease).toBeCloseTo(200 / 460, 12);
  });

  it('zeroSkipping pairs the zeros-sent run with the one that skipped them, never with another', () => {
    const peaks = [460_000, 400_000, 260_000, 200_000];
    const skipped = okRow(key(4, '1f1b', 8, false, 12), peaks, 300, { bytesBetweenStagesPerStep: 900_000 });
    const sent = okRow({ ...key(4, '1f1b', 8, false, 12), skipZeros: false }, peaks, 600, {
      bytesBetweenStagesPerStep: 3_000_000,
      bubbleMeasured: 0.78,
    });
    expect(zeroSkipping([...rows, skipped], s)).toEqual([]);
    expect(zeroSkipping([...rows, sent], s)).toEqual([]);
    expect(zeroSkipping([...rows, sent, skipped], s)).toEqual([
      {
        stages: 4,
        schedule: '1f1b',
        microBatches: 8,
        bytesSent: 3_000_000,
        bytesSkipped: 900_000,
        stepMsSent: 600,
        stepMsSkipped: 300,
        bubbleSent: 0.78,
        bubbleSkipped: skipped.bubbleMeasured,
      },
    ]);
    // The headline keeps to the runs that skipped zeros.
    expect(findRow([sent], { ...key(4, '1f1b', 8), recompute: false })).toBeNull();
  });

  it('headline compares 1f1b with theory and stage-0 memory with gpipe', () => {
    const h = headline(rows, 4, 8);
    expect(h.bubbleTheory).toBeCloseTo(3 / 11, 12);
    expect(h.bubbleError).toBeCloseTo(0.05, 12);
    expect(h.stage0Peak1f1b).toBe(460_000);
    expect(h.stage0PeakGpipe).toBe(900_000);
    expect(h.peakRatio).toBeCloseTo(460 / 900, 12);
    expect(h.peakRatioRecompute).toBeCloseTo(260 / 900, 12);
  });

  it('headline leaves out what did not run', () => {
    const h = headline([rows[2]!], 4, 8);
    expect(h).toMatchObject({
      bubbleMeasured: null,
      bubbleError: null,
      peakRatio: null,
      peakRatioRecompute: null,
      stage0PeakGpipe: null,
    });
    expect(h.bubbleTheory).toBeCloseTo(3 / 11, 12);
  });
});
