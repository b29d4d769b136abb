import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, ensureBuilt, waitForExit } from '@peertrain/harness';
import type { CliReport } from './report.ts';

// The product end to end: `peertrain train` builds the real pages, starts our PeerJS server,
// opens the real dashboard (coordinator) and worker tabs in headless Chromium, and trains over
// real WebRTC data channels inside a private network namespace. Every distributed result is
// checked against the single-worker reference that rank 0 trains on the same global batches.

const BIN = join(REPO_ROOT, 'apps/cli/bin/peertrain.mjs');
let dir = '';

async function train(args: string[]): Promise<{ code: number; stderr: string; report: CliReport | null }> {
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

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peertrain-e2e-'));
  await ensureBuilt(); // once, so each session below starts from a built bundle
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('data parallelism in real Chromium over WebRTC', () => {
  it('ring all-reduce: 3 tabs train the MNIST MLP to >= 92% and equal the single-worker reference', async () => {
    const { code, stderr, report } = await train([
      ...[
        '--workers',
        '3',
        '--strategy',
        'data',
        '--sync',
        'allreduce',
        '--model',
        'mlp',
        '--dataset',
        'mnist',
      ],
      ...['--steps', '300', '--backend', 'wasm', '--reference'],
    ]);
    expect(code, stderr).toBe(0);
    expect(report).not.toBeNull();
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.92);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(r.workers).toHaveLength(3);
    expect(r.workers.every((w) => w.backend === 'wasm' && w.gflops > 0)).toBe(true);
    // Ring all-reduce: each worker sends 2(N-1)/N of the gradient bytes per step (plus framing).
    const gradBytes = 4 * (784 * 128 + 128 + 128 * 10 + 10);
    const ideal = ((2 * 2) / 3) * gradBytes * 300;
    for (const w of r.workers) {
      expect(w.bytesSent).toBeGreaterThanOrEqual(ideal);
      expect(w.bytesSent).toBeLessThan(ideal * 1.02);
    }
    expect(r.loss).toHaveLength(300);
    expect(r.loss[299]!.loss).toBeLessThan(r.loss[0]!.loss);
  });

  it('parameter server: 3 tabs reach >= 92%, equal the reference, and shrug off a malformed frame', async () => {
    const { code, stderr, report } = await train([
      ...['--workers', '3', '--strategy', 'data', '--sync', 'ps', '--model', 'mlp', '--dataset', 'mnist'],
      ...['--steps', '300', '--backend', 'wasm', '--reference', '--inject-fault', 'malformed'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.92);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(r.workers.map((w) => w.role)).toEqual(['worker+server', 'worker', 'worker']);
    // The injected frame was refused by name on rank 0, and all 300 steps still ran.
    expect(r.workers[0]!.framesRefused).toBe(1);
    expect(r.errors.some((e) => e.name === 'ProtocolError')).toBe(true);
    expect(r.loss).toHaveLength(300);
  });

  for (const workers of [2, 4]) {
    it(`${workers} workers x 20 steps equal one worker at batch ${workers}x32 (allreduce)`, async () => {
      const { code, stderr, report } = await train([
        ...['--workers', String(workers), '--sync', 'allreduce', '--model', 'mlp', '--dataset', 'mnist'],
        ...['--steps', '20', '--backend', 'wasm', '--reference', '--seed', String(100 + workers)],
      ]);
      expect(code, stderr).toBe(0);
      expect(report!.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
      expect(report!.reference!.maxAbsDiff).toBeGreaterThanOrEqual(0);
    });
  }

  it('exits non-zero with a named error on a bad configuration', async () => {
    const { code, stderr, report } = await train(['--workers', '0']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/ConfigError|workers/);
    expect(report).toBeNull();
  });
});
