import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import { REPO_ROOT } from './build.ts';
import { spawnIsolated, waitForExit } from './netns.ts';

// The transport compliance suite (the one the memory transport passes in unit tests) over the
// PeerJS adapter: real Chromium, real RTCDataChannels, our own PeerJS server, inside a private
// network namespace.
describe('PeerJS transport compliance in Chromium', () => {
  it('passes every compliance case', async () => {
    const child = spawnIsolated(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'packages/harness/src/transport-check/run.ts')],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT },
    );
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await waitForExit(child);
    expect(code, err).toBe(0);
    const results = JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as
      ComplianceResult[] | { error: string };
    if (!Array.isArray(results)) throw new Error(`compliance page failed: ${results.error}`);
    const failed = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.error ?? ''}`);
    expect(failed).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(16);
    console.log(
      results.map((r) => `${r.name} ${r.ms.toFixed(0)} ms${r.note ? ` (${r.note})` : ''}`).join('\n'),
    );
  }, 240_000);
});
