import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { REPO_ROOT, ensureBuilt, waitForExit } from '@peertrain/harness';
import type { CliReport } from './report.ts';

// What the end-to-end files share: `peertrain train` run as a user runs it (the bin, in its own
// private network namespace), its exit code, stderr and JSON report.

const BIN = join(REPO_ROOT, 'apps/cli/bin/peertrain.mjs');

export interface CliRun {
  code: number;
  stderr: string;
  report: CliReport | null;
}

/**
 * Registers a temporary directory for the file's reports, traces and models (removed after the
 * file) and builds the web app once before the first session. Returns the directory's getter and
 * `train`, which runs one session with the given options.
 */
export function useTrainCli(): { dir: () => string; train: (args: string[]) => Promise<CliRun> } {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peertrain-e2e-'));
    await ensureBuilt(); // once, so each session starts from a built bundle
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  async function train(args: string[]): Promise<CliRun> {
    const reportPath = join(dir, `report-${Math.random().toString(36).slice(2)}.json`);
    const child = spawn(
      process.execPath,
      [BIN, 'train', '--isolated-network', '--report', reportPath, ...args],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await waitForExit(child);
    const report = await readFile(reportPath, 'utf8').then(
      (t) => JSON.parse(t) as CliReport,
      () => null,
    );
    return { code, stderr, report };
  }
  return { dir: () => dir, train };
}
