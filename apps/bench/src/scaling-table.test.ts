import { describe, expect, it } from 'vitest';
import { scalingSettings } from './scaling-cases.ts';
import { withRatios } from './scaling-figures.ts';
import type { ScalingPart } from './scaling-figures.ts';
import { renderScaling, scalingTable } from './scaling-table.ts';
import { figures, row } from './scaling.fixture.ts';

const rows = withRatios([
  row('allreduce', 1, figures(1000, 10_000)),
  row('allreduce', 3, figures(5000, 2_000, { staleness: { mean: 1.25, max: 3 } })),
  row('ps-async', 3, 'UnknownMethodError: no training method named "ps-async"'),
  row('int8', 3, figures(null, 2_500)),
]);

describe('scalingTable', () => {
  it('one line per run: times, ratios, utilization, bytes, accuracy; failures and misses said', () => {
    const lines = scalingTable(rows).split('\n');
    expect(lines).toHaveLength(2 + rows.length);
    const cells = (i: number): string[] =>
      lines[i]!.split('|')
        .slice(1, -1)
        .map((c) => c.trim());
    expect(cells(0)[5]).toBe('time to target s');
    expect(cells(2)).toEqual([
      'allreduce',
      '1',
      '96',
      '20',
      '20',
      '1.0',
      '1.00x',
      '1.00x',
      '10000',
      '1.00x',
      '0.50',
      '10 B',
      '93%',
      '',
    ]);
    expect(cells(3).slice(5, 8)).toEqual(['5.0', '5.00x', '5.00x']);
    expect(cells(3)[13]).toBe('staleness 1.3 (max 3)');
    expect(cells(4)[0]).toBe('ps-async');
    expect(cells(4)[13]).toMatch(/^failed: UnknownMethodError/);
    expect(cells(5).slice(4, 8)).toEqual(['-', '-', '-', '-']);
    expect(cells(5)[13]).toBe('target not reached');
  });
});

describe('renderScaling', () => {
  it('a table per model, the compression table and the checks', () => {
    const part: ScalingPart = {
      settings: scalingSettings(true),
      overlapField: null,
      rows: [...rows, row('allreduce', 1, figures(3000, 5_000), 'cnn')],
      compression: [
        {
          spec: 'none',
          tabs: 3,
          steps: 30,
          ok: true,
          bytesPerStep: 1024,
          vsNone: 1,
          finalAccuracy: 0.9,
          accuracyDropPoints: 0,
          reportedRatio: null,
        },
        { spec: 'int8', tabs: 3, steps: 30, ok: false, error: 'PhaseTimeoutError: step 3' },
      ],
      checks: [{ what: 'mlp: 3 tabs', value: '5.00x (allreduce)', pass: false }],
    };
    const md = renderScaling(part).join('\n');
    expect(md).toContain('### MLP, target 92%');
    expect(md).toContain('### CNN, target 92%');
    expect(md).toContain('left out (the run config has no overlap field)');
    expect(md).toContain('| none (fp32) |');
    expect(md).toContain('failed: PhaseTimeoutError: step 3');
    expect(md).toContain('- mlp: 3 tabs: 5.00x (allreduce) (NO)');
  });
});
