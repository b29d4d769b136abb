import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/coordinator';
import { reportFileName } from './report.ts';

describe('reportFileName', () => {
  it('names the room, model, strategy and time', () => {
    const report = (input: object) => ({ config: parseRunConfig(input) }) as RunReport;
    const at = new Date('2026-01-02T03:04:05.678Z');
    expect(reportFileName(report({}), 'abc', at)).toBe(
      'peertrain-abc-mlp-all-reduce-2026-01-02T03-04-05-678.json',
    );
    expect(reportFileName(report({ strategy: 'pipeline', model: 'deepMlp' }), 'abc', at)).toBe(
      'peertrain-abc-deepMlp-pipeline-1f1b-2026-01-02T03-04-05-678.json',
    );
    expect(
      reportFileName(report({ strategy: 'hybrid', workers: 4, replicas: 2, schedule: 'gpipe' }), 'r', at),
    ).toBe('peertrain-r-mlp-hybrid-2-gpipe-2026-01-02T03-04-05-678.json');
  });
});
