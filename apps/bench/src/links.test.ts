import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/protocol';
import { parseLinkSpec } from '@peertrain/harness';
import {
  LINK,
  accuracyDiffPoints,
  linkRow,
  linkRowPasses,
  linksErrors,
  linksSettings,
  renderLinks,
  slowdown,
  twinOf,
} from './links.ts';
import type { LinkRow, LinksPart } from './links.ts';

const report = (steps: number, accuracy: number, wallMs: number): RunReport =>
  ({
    loss: Array.from({ length: steps }, (_, step) => ({ step, loss: 1 })),
    testAccuracy: accuracy,
    stepMsMedian: wallMs / steps,
    wallMs,
    bytesSent: steps * 1000,
  }) as RunReport;

describe('the links part', () => {
  it('runs every case as a valid config over the issue’s impairment, fewer steps when quick', () => {
    expect(parseLinkSpec(LINK)).toEqual({ rateBitsPerSecond: 20e6, lossPercent: 2, delayMs: 40 });
    const full = linksSettings(false);
    const quick = linksSettings(true);
    expect(full.cases.map((c) => c.id)).toEqual(['allreduce', 'local-10-int8', '1f1b']);
    expect(full.cases.map((c) => c.config.steps)).toEqual([60, 300, 100]);
    expect(quick.cases.map((c) => c.config.steps)).toEqual([10, 20, 6]);
    for (const c of [...full.cases, ...quick.cases]) expect(() => parseRunConfig(c.config)).not.toThrow();
    expect(full.cases[2]?.config).toMatchObject({ strategy: 'pipeline', schedule: '1f1b', workers: 4 });
  });

  const sync = linksSettings(false).cases[0]!;
  const c = { ...sync, config: { ...sync.config, steps: 100 } };
  const calm = linkRow(c, null, report(100, 0.9123, 20_000));
  const slow = linkRow(c, LINK, report(100, 0.9101, 300_000));

  it('builds rows, finds the twin, and measures the difference in points and the slowdown', () => {
    expect(calm).toMatchObject({ caseId: 'allreduce', link: null, steps: 100, bytesPerStep: 1000 });
    expect(twinOf(slow, [calm, slow])).toBe(calm);
    expect(twinOf(calm, [calm, slow])).toBeNull();
    expect(accuracyDiffPoints(slow, calm)).toBeCloseTo(-0.22, 6);
    expect(slowdown(slow, calm)).toBe(15);
    expect(accuracyDiffPoints(slow, null)).toBeNaN();
    expect(slowdown(slow, { ...calm, ok: false })).toBeNaN();
  });

  it('passes an impaired run within 0.5 point of its twin that finished every step, and nothing else', () => {
    const rows = [calm, slow];
    expect(linkRowPasses(calm, rows, 100)).toBe(true);
    expect(linkRowPasses(slow, rows, 100)).toBe(true);
    expect(linkRowPasses(slow, rows, 101)).toBe(false);
    const off = { ...slow, testAccuracy: 0.9072 }; // 0.51 point below
    expect(linkRowPasses(off, [calm, off], 100)).toBe(false);
    expect(linkRowPasses({ ...slow, testAccuracy: 0.9173 }, [calm], 100)).toBe(true); // 0.50 above
    const failedTwin: LinkRow = { caseId: 'allreduce', label: '', link: null, ok: false, error: 'x' };
    expect(linkRowPasses(slow, [failedTwin, slow], 100)).toBe(false);
    expect(linkRowPasses(slow, [slow], 100)).toBe(false);
  });

  it('renders one line per run with its verdict, and lists the misses as errors', () => {
    const failed: LinkRow = {
      caseId: '1f1b',
      label: '1F1B',
      link: LINK,
      ok: false,
      error: 'PhaseTimeoutError: x',
    };
    const part: LinksPart = {
      settings: { link: LINK, cases: [c] },
      rows: [calm, slow, failed],
      tolerancePoints: 0.5,
    };
    const md = renderLinks(part).join('\n');
    expect(md).toContain('1 of 2 impaired runs reached');
    expect(md).toMatch(
      /\| DP sync all-reduce \| rate=20mbit,loss=2%,delay=40ms \|\s+100 \|\s+91\.01% \|\s+-0\.22 \|/,
    );
    expect(md).toMatch(/\|\s+3000 \|\s+300\.0 \|\s+15\.00x \|/);
    expect(md).toContain('failed: PhaseTimeoutError: x');
    expect(linksErrors(part)).toEqual([`links 1f1b ${LINK}: PhaseTimeoutError: x`]);
    const retried = renderLinks({ ...part, rows: [calm, { ...slow, setupRetry: 'dial timed out' }] }).join(
      '\n',
    );
    expect(retried).toContain('| yes (second session: the first never stepped) |');
    expect(retried).toContain('first session failed before its first step: dial timed out');
  });
});
