import { describe, expect, it } from 'vitest';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import { runIsolatedScript } from './netns.ts';

// The transport compliance suite (the one the memory transport passes in unit tests) over the
// PeerJS adapter: real Chromium, real RTCDataChannels, our own PeerJS server, inside a private
// network namespace.
describe('PeerJS transport compliance in Chromium', () => {
  it('passes every compliance case', async () => {
    const {
      code,
      stderr: err,
      result,
    } = await runIsolatedScript('packages/harness/src/transport-check/run.ts');
    expect(code, err).toBe(0);
    const results = result as ComplianceResult[] | { error: string };
    if (!Array.isArray(results)) throw new Error(`compliance page failed: ${results.error}`);
    const failed = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.error ?? ''}`);
    expect(failed).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(16);
    console.log(
      results.map((r) => `${r.name} ${r.ms.toFixed(0)} ms${r.note ? ` (${r.note})` : ''}`).join('\n'),
    );
  }, 360_000);
});
