import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/protocol';
import {
  medianOf,
  overlapChecks,
  renderThreads,
  threadRow,
  threadsErrors,
  threadsSettings,
} from './threads.ts';
import type { ThreadRow } from './threads.ts';

const report = (over: Partial<RunReport>, thread: boolean[]): RunReport =>
  ({
    samplesPerSec: 1000,
    stepMsMedian: 20,
    computeUtilization: 0.5,
    workers: thread.map((t, rank) => ({ rank, ...(t ? { computeThread: true } : {}) })),
    ...over,
  }) as unknown as RunReport;

describe('threads part', () => {
  it('plans valid runs: every case parses, full has two rounds, quick one with fewer steps', () => {
    const full = threadsSettings(false);
    const quick = threadsSettings(true);
    expect(full.repeats).toBe(2);
    expect(quick.repeats).toBe(1);
    for (const c of [...full.cases, ...quick.cases]) expect(() => parseRunConfig(c.config)).not.toThrow();
    full.cases.forEach((c, i) => expect(quick.cases[i]!.config.steps!).toBeLessThan(c.config.steps!));
  });

  it('a row says whether every worker computed where its room asked', () => {
    const c = threadsSettings(true).cases[0]!;
    expect(threadRow(c, 'thread', 0, report({}, [true, true]), null).placed).toBe(true);
    expect(threadRow(c, 'thread', 0, report({}, [true, false]), null).placed).toBe(false);
    expect(threadRow(c, 'page', 0, report({}, [false]), null).placed).toBe(true);
    expect(threadRow(c, 'page', 0, report({}, [true]), null).placed).toBe(false);
  });

  it('medians per case and place; errors for failed and misplaced runs; the table has both places', () => {
    const s = threadsSettings(true);
    const id = s.cases[0]!.id;
    const row = (compute: 'page' | 'thread', repeat: number, sps: number, placed = true): ThreadRow => ({
      ...{ caseId: id, label: 'x', compute, repeat, ok: true, samplesPerSec: sps, placed },
    });
    const rows = [
      row('page', 0, 100),
      row('thread', 0, 80),
      row('page', 1, 300),
      row('thread', 1, 60, false),
    ];
    rows.push({ caseId: id, label: 'x', compute: 'page', repeat: 2, ok: false, error: 'E: boom' });
    expect(medianOf(rows, id, 'page', 'samplesPerSec')).toBe(200);
    expect(medianOf(rows, id, 'thread', 'samplesPerSec')).toBe(70);
    expect(medianOf(rows, 'none', 'page', 'samplesPerSec')).toBeNaN();
    expect(threadsErrors({ settings: s, rows })).toEqual([
      `threads ${id} thread #2: a worker did not compute where its room asked`,
      `threads ${id} page #3: E: boom`,
    ]);
    const md = renderThreads({ settings: s, rows }).join('\n');
    expect(md).toContain("| page's thread |");
    expect(md).toContain('0.35x'); // 70 / 200
  });

  it("judges issue 10's overlap bound per compute place from the CNN cases' medians", () => {
    const s = threadsSettings(true);
    const cnn = (caseId: string, compute: 'page' | 'thread', critical: number): ThreadRow => ({
      ...{ caseId, label: caseId, compute, repeat: 0, ok: true },
      ...{ exposedCommMsPerStep: critical * 2, criticalCommMsPerStep: critical },
    });
    const rows = [
      cnn('cnn-sync-4', 'page', 20),
      cnn('cnn-overlap-4', 'page', 12),
      cnn('cnn-sync-4', 'thread', 16),
      cnn('cnn-overlap-4', 'thread', 7),
    ];
    const lines = overlapChecks({ settings: s, rows });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^- engine on the page's thread: .*0\.60x \(12\.0 vs 20\.0 ms a step\).*\(NO\)$/,
    );
    expect(lines[1]).toMatch(
      /^- engine on a thread of its own: .*0\.44x \(7\.0 vs 16\.0 ms a step\).*\(yes\)$/,
    );
    expect(overlapChecks({ settings: s, rows: rows.slice(0, 1) })).toEqual([]);
  });
});
