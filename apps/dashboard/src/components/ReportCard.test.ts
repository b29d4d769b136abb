import { describe, expect, it } from 'vitest';
import type { RunReport } from '@peertrain/coordinator';
import { parseRunConfig } from '@peertrain/protocol';
import { reportExtras } from './ReportCard.tsx';

const base = {
  config: parseRunConfig({}),
  finalLoss: 0.3,
  testAccuracy: 0.93,
  wallMs: 1000,
  stepMsMedian: 10,
  computeMsMedian: 6,
  commMsMedian: 4,
  samplesPerSec: 100,
  bytesSent: 0,
  workers: [],
  loss: [],
  evals: [],
  errors: [],
} satisfies RunReport;

describe('reportExtras', () => {
  it('adds nothing for a report written before these fields', () => {
    expect(reportExtras(base)).toEqual([]);
  });

  it('shows bytes per sample, compute share, the target, staleness and compression', () => {
    const target = { accuracy: 0.92, reached: true, step: 120, timeToTargetMs: 4200 };
    const extras = reportExtras({
      ...base,
      bytesPerSample: 2048,
      computeUtilization: 0.456,
      target: { ...target, samplesToTarget: 11_520, bytesToTarget: 1e6 },
      staleness: { bound: 2, mean: 1.25, max: 3, perWorker: [] },
      compression: { spec: 'int8', bytesRatio: 0.2512 },
    });
    expect(extras.map(([k]) => k)).toEqual([
      'bytes / sample',
      'compute share',
      'target 92.0%',
      'staleness',
      'compression',
    ]);
    expect(extras[1]![1]).toBe('46%');
    expect(extras[2]![1]).toMatch(/^step 120, /);
    expect(extras[3]![1]).toBe('mean 1.25, max 3');
    expect(extras[4]![1]).toBe('int8 (0.251×)');
    const missed = { ...target, reached: false, step: null, samplesToTarget: null, bytesToTarget: null };
    expect(reportExtras({ ...base, target: missed })).toEqual([['target 92.0%', 'not reached']]);
  });
});
