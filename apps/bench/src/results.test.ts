import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { settingsFor } from './args.ts';
import type { BenchReport } from './report.ts';
import { runKind, writeResults } from './results.ts';

describe('runKind', () => {
  it('is empty for a full run and names quick and partial runs', () => {
    expect(
      runKind({ quick: false, parts: ['raw', 'allreduce', 'train', 'pipeline', 'dashboard', 'gpu'] }),
    ).toBe('');
    expect(
      runKind({ quick: true, parts: ['raw', 'allreduce', 'train', 'pipeline', 'dashboard', 'gpu'] }),
    ).toBe('-quick');
    expect(runKind({ quick: false, parts: ['pipeline'] })).toBe('-pipeline');
    // A run without the dashboard part is partial: it does not replace a full run's latest.*.
    expect(runKind({ quick: false, parts: ['raw', 'allreduce', 'train', 'pipeline'] })).toBe(
      '-raw-allreduce-train-pipeline',
    );
    expect(runKind({ quick: true, parts: ['raw', 'train'] })).toBe('-quick-raw-train');
  });

  it('names a scaling run apart, and its smoke check as quick', () => {
    const all = ['raw', 'allreduce', 'train', 'pipeline', 'dashboard', 'scaling'] as const;
    expect(runKind({ quick: false, parts: [...all] })).toBe(`-${all.join('-')}`);
    expect(runKind({ quick: false, parts: ['scaling'], scaling: { quick: false } })).toBe('-scaling');
    expect(runKind({ quick: false, parts: ['scaling'], scaling: { quick: true } })).toBe('-quick-scaling');
    const comp = { quick: false, compressionOnly: true };
    expect(runKind({ quick: false, parts: ['scaling'], scaling: comp })).toBe('-scaling-compression');
    const some = { quick: false, methodsOnly: true };
    expect(runKind({ quick: false, parts: ['scaling'], scaling: some })).toBe('-scaling-methods');
    // The scaling plan's size says nothing about a run without the part.
    expect(runKind({ quick: false, parts: ['raw'], scaling: { quick: true } })).toBe('-raw');
    // Tabs of one profile (tab links) never replace the figures over WebRTC.
    expect(runKind({ quick: false, parts: ['pipeline'], oneProfile: true })).toBe('-pipeline-one-profile');
  });
});

describe('writeResults', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the report, its latest copy for its kind, and the attachments', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-results-'));
    const settings = settingsFor({ quick: false, parts: ['pipeline'] });
    const report: BenchReport = {
      name: '20261122-015120-pipeline',
      machine: {
        cpus: 2,
        cpuModel: 'x',
        totalMemGiB: 1,
        loadAvgStart: [],
        loadAvgEnd: [],
        platform: 'linux x64',
        node: 'v20',
        chromium: '156',
        date: '2026-11-22T01:51:20.457Z',
        commit: null,
      },
      settings,
      clock: null,
      raw: null,
      allReduce: null,
      train: null,
      pipeline: null,
      errors: [],
      durationMs: 1000,
    };
    const paths = await writeResults(dir, report, [{ suffix: '-x.trace.json', data: { traceEvents: [] } }]);
    expect(paths.json).toBe(join(dir, '20261122-015120-pipeline.json'));
    expect((await readdir(dir)).sort()).toEqual([
      '20261122-015120-pipeline-x.trace.json',
      '20261122-015120-pipeline.json',
      '20261122-015120-pipeline.md',
      'latest-pipeline.json',
      'latest-pipeline.md',
    ]);
    const back = JSON.parse(await readFile(join(dir, 'latest-pipeline.json'), 'utf8')) as BenchReport;
    expect(back.name).toBe(report.name);
    expect(await readFile(join(dir, '20261122-015120-pipeline-x.trace.json'), 'utf8')).toBe(
      '{"traceEvents":[]}',
    );
  });
});
