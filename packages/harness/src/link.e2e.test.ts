import { describe, expect, it } from 'vitest';
import { isolatedNetworkAvailable, runIsolatedScript } from './netns.ts';
import type { UdpMeasurement } from './link-probe.ts';

const available = await isolatedNetworkAvailable();

// link-check/run.ts measures UDP on the namespace's veth address before and after applyLink.
describe.skipIf(!available)('--link inside the private namespace', () => {
  it('rate=20mbit,loss=2%,delay=40ms: UDP throughput under the rate, loss near 2%, round trip over 2 x 40 ms', async () => {
    const { code, stderr, result } = await runIsolatedScript('packages/harness/src/link-check/run.ts');
    expect(code, stderr).toBe(0);
    const { before, after } = result as { before: UdpMeasurement; after: UdpMeasurement };
    expect(before.rttMs).toBeLessThan(20);
    expect(before.lossPercent).toBe(0);
    expect(before.throughputBitsPerSecond).toBeGreaterThan(40e6);
    // Payload bits only: 20 Mbit/s on the wire less headers and the 2% lost.
    expect(after.throughputBitsPerSecond).toBeLessThan(20.5e6);
    expect(after.throughputBitsPerSecond).toBeGreaterThan(14e6);
    // 3000 datagrams at 2%: 60 expected, standard deviation ~7.7.
    expect(after.lossPercent).toBeGreaterThan(0.8);
    expect(after.lossPercent).toBeLessThan(3.5);
    expect(after.rttMs).toBeGreaterThanOrEqual(80);
    expect(after.rttMs).toBeLessThan(130);
  }, 60_000);
});
