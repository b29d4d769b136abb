import { ConfigError } from './errors.ts';
import type { StageRange } from './messages.ts';

/**
 * Problems with `ranges` as a partition of `layerCount` layers into `stages` stages: one range per
 * stage, contiguous, non-empty, from layer 0 to the last layer. Empty when it is one.
 */
export function partitionIssues(ranges: readonly StageRange[], layerCount: number, stages: number): string[] {
  const issues: string[] = [];
  if (ranges.length !== stages) issues.push(`${ranges.length} ranges for ${stages} stages`);
  let expected = 0;
  ranges.forEach((r, s) => {
    if (r.first !== expected)
      issues.push(
        s === 0
          ? `stage 0 starts at layer ${r.first}, not 0`
          : `stage ${s} starts at layer ${r.first}, not ${expected} (ranges must be contiguous)`,
      );
    if (r.end <= r.first) issues.push(`stage ${s} is empty`);
    expected = r.end;
  });
  if (ranges.length > 0 && expected !== layerCount)
    issues.push(`the last stage ends at layer ${expected - 1}, not ${layerCount - 1} (the last layer)`);
  return issues;
}

/**
 * Reads a user partition such as `'0-2,3-5,6-8'` (inclusive layer ranges, as in the CLI flag; a
 * single index `'4'` is a one-layer stage) into half-open ranges, and lists every problem: a part
 * that is not a range, ranges that are not contiguous, do not cover layers 0..layerCount-1 or do
 * not number exactly `stages`.
 */
export function readPartition(
  text: string,
  layerCount: number,
  stages: number,
): { ranges: StageRange[]; issues: string[] } {
  const issues: string[] = [];
  const ranges: StageRange[] = [];
  const parts = text.split(',').map((s) => s.trim());
  for (const part of parts) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (m === null) {
      issues.push(`'${part}' is not a layer range like 3-5`);
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last < first) {
      issues.push(`'${part}' ends before it starts`);
      continue;
    }
    if (last >= layerCount)
      issues.push(`'${part}' reaches layer ${last}; the model has layers 0-${layerCount - 1}`);
    ranges.push({ first, end: last + 1 });
  }
  if (issues.length === 0) issues.push(...partitionIssues(ranges, layerCount, stages));
  return { ranges, issues };
}

/** readPartition's ranges; throws ConfigError listing every problem. */
export function parsePartition(text: string, layerCount: number, stages: number): StageRange[] {
  const { ranges, issues } = readPartition(text, layerCount, stages);
  if (issues.length > 0) throw new ConfigError(`invalid partition '${text}'`, issues);
  return ranges;
}
