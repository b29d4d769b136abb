import { describe, expect, it } from 'vitest';
import { key, okRow } from './pipeline.fixture.ts';
import { beatLines, headlineVersusLines, versus1f1b, versusTable } from './pipeline-versus.ts';
import type { PipelineRow } from './report.ts';

const peaks = [1, 1, 1, 1];
const rows: PipelineRow[] = [
  okRow(key(4, 'naive', 1), peaks, 900, { bubbleMeasured: 0.8 }),
  okRow(key(4, 'gpipe', 8), peaks, 1200, { bubbleMeasured: 0.7 }),
  okRow(key(4, '1f1b', 8), peaks, 1000, { bubbleMeasured: 0.6 }),
  okRow(key(4, 'interleaved', 8, false, 6, 2), peaks, 1100, { bubbleMeasured: 0.5 }),
  okRow(key(4, 'zb-h1', 8), peaks, 800, { bubbleMeasured: 0.25 }),
  // no 1f1b at (4, 16): left out
  okRow(key(4, 'zb-h1', 16), peaks, 800),
  { ...key(4, 'interleaved', 4, false, 6, 2), ok: false, error: 'late' },
  // the recompute pair's 1f1b (12 steps) is not what a 6-step row is compared with
  okRow(key(4, '1f1b', 8, false, 12), peaks, 500, { bubbleMeasured: 0.1 }),
];

describe('versus1f1b', () => {
  const v = versus1f1b(rows);

  it('compares every other schedule with 1F1B at the same (P, M) and step count', () => {
    expect(v.map((e) => [e.schedule, e.virtualStages, e.microBatches])).toEqual([
      ['gpipe', 1, 8],
      ['interleaved', 2, 8],
      ['zb-h1', 1, 8],
    ]);
    const [g, i, z] = v;
    expect(g).toMatchObject({ beatBubble: false, beatStep: false, bubble1f1b: 0.6, stepMs1f1b: 1000 });
    expect(i).toMatchObject({ beatBubble: true, beatStep: false, belowTheory1f1b: false });
    expect(i?.bubbleDiff).toBeCloseTo(-0.1, 12);
    expect(i?.bubbleTheory).toBeCloseTo(3 / 19, 12);
    expect(z).toMatchObject({ beatBubble: true, beatStep: true, belowTheory1f1b: true });
    expect(z?.stepRatio).toBeCloseTo(0.8, 12);
    expect(z?.bubbleTheory).toBeCloseTo(3 / 27, 12);
  });

  it('says which schedule beat 1F1B, as a table and as sentences', () => {
    const md = versusTable(v).split('\n');
    expect(md).toHaveLength(2 + 3);
    expect(md[3]).toMatch(/\| interleaved V=2 \|.*\| -10\.0 pp \|.*\| +1\.10x \| bubble only +\| no +\|$/);
    expect(md[4]).toMatch(/\| zb-h1 +\|.*\| +0\.80x \| yes \(bubble and step\) \| yes +\|$/);
    expect(beatLines(v)).toEqual([
      "- gpipe beat 1F1B's measured bubble in 0 of 1 (P, M): nowhere; shorter step at nowhere.",
      "- interleaved V=2 beat 1F1B's measured bubble in 1 of 1 (P, M): P=4 M=8; shorter step at nowhere.",
      "- zb-h1 beat 1F1B's measured bubble in 1 of 1 (P, M): P=4 M=8; shorter step at P=4 M=8.",
    ]);
  });

  it("gives the issue's check at the headline for interleaved and zb-h1 only", () => {
    const lines = headlineVersusLines(v, 4, 8);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(
      "P=4 interleaved V=2 M=8: bubble 0.500 (theory 0.158) vs 1F1B's 0.600 in this run: below (met)",
    );
    expect(lines[0]).toContain("vs 1F1B's theory 0.273: not below");
    expect(lines[1]).toContain('P=4 zb-h1 M=8: bubble 0.250 (theory 0.111)');
    expect(headlineVersusLines(v, 2, 8)).toEqual([]);
  });
});
