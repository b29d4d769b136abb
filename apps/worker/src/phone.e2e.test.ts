import { describe, expect, it } from 'vitest';
import { runIsolatedScript } from '@peertrain/harness';
import { FIELDS, ICE_URL, PHONE, type PhoneCheckResult } from './phone-check/check.ts';

// The worker page on a phone: `npm start --ice ...` serves it, the real dashboard coordinates a
// 2-worker parameter-server run, and one worker tab has a 360x740 mobile viewport. Real Chromium,
// real WebRTC, inside a private network namespace (phone-check/run.ts does the browser work).
// Screenshots land in .artifacts/screenshots/worker-phone*.png.
describe('worker page on a phone', () => {
  it('fits 360 px while training, shows every status field, and leaves on request', async () => {
    const { code, stderr: err, result } = await runIsolatedScript('apps/worker/src/phone-check/run.ts');
    const r = result as PhoneCheckResult | { error: string };
    if ('error' in r) throw new Error(`phone check failed: ${r.error}\n${err.slice(-4000)}`);
    expect(code, err).toBe(0);

    // npm start printed the join link and served the --ice server to the pages.
    expect(r.joinUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/apps\/worker\/\?room=phone-check$/);
    expect(r.pageConfig).toMatchObject({ iceServers: [{ urls: [ICE_URL] }] });

    // No horizontal scroll at 360 px, and every field is on screen.
    expect(r.trainingLayout.innerWidth).toBe(PHONE.width);
    expect(r.trainingLayout.scrollWidth).toBeLessThanOrEqual(r.trainingLayout.innerWidth);
    expect(r.trainingLayout.offenders).toEqual([]);
    expect(Object.keys(r.training).sort()).toEqual([...FIELDS].sort());

    // What it shows is what the runtime does.
    const t = r.training;
    expect(t.phase).toBe('training');
    expect(t.room).toBe('phone-check');
    expect(t['peer-id']).toMatch(/^pt-phone-check-w-[a-z0-9]+$/); // workerPeerId(room, id)
    expect(['worker', 'worker + parameter server']).toContain(t.role);
    expect(t.shard).toMatch(/^\d[\d,]*–\d[\d,]* \([\d,]+\)$/);
    expect(t.backend).toMatch(/^(webgpu|webgl|wasm|cpu), \d+(\.\d+)? GFLOP\/s$/);
    expect(t.rank).toMatch(/^[01] \/ 2$/);
    expect(t.progress).toMatch(new RegExp(`step \\d+ / ${r.progress.max}`));
    expect(r.progress.max).toBe(5000);
    expect(r.progress.now).toBeGreaterThanOrEqual(5);
    expect(t.loss).toMatch(/^\d+\.\d{4}$/);
    expect(t.sent).toMatch(/ (kB|MB|GB)$/);
    expect(t.received).toMatch(/ (kB|MB|GB)$/);
    expect(t.refused).toBe('0');
    // Engine memory from the last ping, and the model's parameters this run holds.
    expect(t.memory).toMatch(/^\d+(\.\d+)? [kMG]?B in \d+ tensors.*, parameters \d+(\.\d+)? [kM]B$/);
    expect(t['last-error']).toBe('–');
    expect(t.leave).toBe('Leave');
    expect(r.phoneErrors).toEqual([]);

    // Leave: the page says so, still fits, and offers to join again.
    expect(r.leftPhase).toBe('Left the room');
    expect(r.joinAgainVisible).toBe(true);
    expect(r.leftLayout.scrollWidth).toBeLessThanOrEqual(r.leftLayout.innerWidth);
    expect(r.leftLayout.offenders).toEqual([]);
    expect(r.screenshots.map((p) => p.split('/').at(-1))).toEqual([
      'worker-phone.png',
      'worker-phone-full.png',
      'worker-phone-left.png',
    ]);
    console.log(
      `phone check: server up ${r.ms.serverUp.toFixed(0)} ms, training at ${r.ms.training.toFixed(0)} ms`,
    );
  }, 480_000);
});
