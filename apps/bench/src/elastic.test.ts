import { describe, expect, it } from 'vitest';
import type { ChromeTrace, RunReport } from '@peertrain/protocol';
import {
  elasticConfig,
  elasticDilocoSettings,
  elasticRow,
  elasticRowPasses,
  elasticSettings,
  redoneSteps,
  renderElastic,
} from './elastic.ts';
import { parseRunConfig } from '@peertrain/protocol';

const compute = (pid: number, step: number): ChromeTrace['traceEvents'][number] => ({
  ...{ name: 'compute', ph: 'X', ts: step * 10, dur: 5, pid, tid: 1 },
  args: { step },
});

describe('the elastic part', () => {
  it('runs the issue’s 20 seeds at 60 steps, 3 of them at 20 steps when quick', () => {
    expect(elasticSettings(false)).toEqual({
      workers: 4,
      steps: 60,
      seeds: [...Array(20).keys()].map((i) => i + 1),
    });
    expect(elasticSettings(true)).toEqual({ workers: 4, steps: 20, seeds: [1, 2, 3] });
  });

  it('runs elastic DiLoCo in rounds of 5 with plain SGD inside, a config the workers accept', () => {
    const d = elasticDilocoSettings(false);
    expect(d).toMatchObject({ workers: 4, steps: 60, innerSteps: 5 });
    expect(d.seeds).toHaveLength(10);
    expect(elasticDilocoSettings(true)).toMatchObject({ steps: 20, seeds: [1, 2, 3], innerSteps: 5 });
    const c = parseRunConfig(elasticConfig(d));
    expect(c).toMatchObject({ sync: 'diloco', innerSteps: 5, elastic: true, elasticPolicy: 'fixed-global' });
    expect(c.optimizer).toEqual({ kind: 'sgd', momentum: 0 });
    expect(parseRunConfig(elasticConfig(elasticSettings(false))).sync).toBe('allreduce');
  });

  it('counts the steps a peer computed twice from the trace', () => {
    const trace = {
      traceEvents: [compute(1, 0), compute(1, 1), compute(2, 1), compute(1, 1), compute(2, 2), compute(2, 2)],
    } as ChromeTrace;
    expect(redoneSteps(trace)).toBe(2);
    expect(redoneSteps(null)).toBeNaN();
  });

  it('builds a row, passes it only with every step once and the parameters close', () => {
    const loss = [0, 1, 2].map((step) => ({ step, loss: 1 }));
    const report = {
      loss,
      membershipChanges: [{ step: 1, epoch: 2, cause: 'closed', peerId: 'p' }],
    } as RunReport;
    const params = new Float32Array(101_770).fill(1);
    const near = params.map((p, i) => (i === 5 ? p + 1e-7 : p));
    const row = elasticRow(
      4,
      {
        report,
        params: near,
        trace: { traceEvents: [compute(1, 1), compute(1, 1)] } as ChromeTrace,
        wallMs: 1500,
      },
      params,
      {
        planned: [{ kind: 'kill', step: 1, rank: 3 }],
        done: [{ kind: 'kill', rank: 3, step: 1, atStep: 2, atMs: 9, outcome: 'tab closed' }],
      },
    );
    expect(row).toMatchObject({ seed: 4, killStep: 1, killedAtStep: 2, killedRank: 3, stepsFinished: 3 });
    expect(row).toMatchObject({ stepsDoubled: 0, stepsRedone: 1, redoneFrom: [1], wallMs: 1500 });
    expect(row.maxRelDiff).toBeGreaterThan(0);
    expect(row.maxRelDiff).toBeLessThan(1e-6);
    expect(elasticRowPasses(row, 3)).toBe(true);
    expect(elasticRowPasses(row, 4)).toBe(false);
    expect(elasticRowPasses({ ...row, maxRelDiff: 1e-3 }, 3)).toBe(false);
    expect(elasticRowPasses({ ...row, stepsDoubled: 1 }, 3)).toBe(false);
    const md = renderElastic({
      settings: { workers: 4, steps: 3, seeds: [4] },
      rows: [row],
      tolerance: 1e-5,
    });
    expect(md.join('\n')).toContain('1 of 1 disturbed runs finished every step once');
    expect(md.join('\n')).toMatch(/\|\s+4 \|\s+1 \|\s+2 \|\s+3 \|\s+3 \|\s+1 \|\s+1 \|/);
  });
});
