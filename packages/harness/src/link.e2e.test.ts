import { describe, expect, it } from 'vitest';
import { isolatedNetworkAvailable, runIsolatedScript } from './netns.ts';
import type { UdpMeasurement } from './link-probe.ts';

const available = await isolatedNetworkAvailable();

/**
 * 5 Mbit/s rather than the 20: unshaped loopback UDP must clearly exceed the rate for the
 * check to mean anything, and on a loaded 2-core machine it was measured as low as 16 Mbit/s.
 */
const RATE = 5e6;
const SPEC = 'rate=5mbit,loss=2%,delay=40ms';

// link-check/run.ts measures UDP on the namespace's veth address before and after applyLink.
describe.skipIf(!available)('--link inside the private namespace', () => {
  it(`${SPEC}: UDP throughput under the rate, loss near 2%, round trip over 2 x 40 ms`, async () => {
    const { code, stderr, result } = await runIsolatedScript('packages/harness/src/link-check/run.ts', [
      SPEC,
    ]);
    expect(code, stderr).toBe(0);
    const { before, after } = result as { before: UdpMeasurement; after: UdpMeasurement };
    expect(before.rttMs).toBeLessThan(20);
    expect(before.lossPercent).toBe(0);
    expect(before.throughputBitsPerSecond, 'unshaped UDP too slow here to tell').toBeGreaterThan(2 * RATE);
    // Payload bits only: the rate on the wire less IP/UDP headers (28 of 1228 bytes) and the 2% lost.
    expect(after.throughputBitsPerSecond).toBeLessThan(RATE);
    expect(after.throughputBitsPerSecond).toBeGreaterThan(0.7 * RATE);
    // 3000 datagrams at 2%: 60 expected, standard deviation ~7.7.
    expect(after.lossPercent).toBeGreaterThan(0.8);
    expect(after.lossPercent).toBeLessThan(3.5);
    // Each direction is delayed: the round trip gains 2 x 40 ms.
    expect(after.rttMs).toBeGreaterThanOrEqual(80);
    expect(after.rttMs).toBeLessThan(150);
  }, 60_000);
});
