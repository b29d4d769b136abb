import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@peertrain/base';
import { ClockSync } from './clock.ts';
import type { PingSample } from './clock.ts';

/**
 * Ping exchanges between a local clock and a remote clock `offset` ms ahead. The way out waits
 * 0.4 ms plus exponential jitter of mean 6 ms, the way back 0.4 ms plus mean 1 ms: very asymmetric.
 */
function exchanges(offset: number, count: number, seed: number): PingSample[] {
  const rnd = mulberry32(seed);
  const exp = (mean: number): number => -mean * Math.log(1 - rnd());
  const samples: PingSample[] = [];
  let t = 5_000;
  for (let i = 0; i < count; i++) {
    const t0 = t;
    const arrive = t0 + 0.4 + exp(6); // local time the ping arrives
    const t1 = arrive + offset;
    const t2 = t1 + 0.05; // the remote answers 50 µs later
    const t3 = arrive + 0.05 + 0.4 + exp(1);
    samples.push({ t0, t1, t2, t3 });
    t = t3 + 100;
  }
  return samples;
}

describe('ClockSync', () => {
  it('recovers a known offset under asymmetric jitter (min-rtt sample wins)', () => {
    for (const offset of [123.4, -5_000.25, 0]) {
      const sync = new ClockSync({ window: 64 });
      const samples = exchanges(offset, 64, 7);
      for (const s of samples) expect(sync.add(s)).toBe(true);
      const est = sync.estimate();
      expect(est).not.toBeNull();
      expect(Math.abs(est!.offsetMs - offset)).toBeLessThan(0.3);
      expect(est!.rttMs).toBeLessThan(1.5);
      // A plain average of every sample is biased by the asymmetry: the test can tell them apart.
      const naive =
        samples.reduce((sum, s) => sum + (s.t1 - s.t0 + ((s.t2 ?? s.t1) - s.t3)) / 2, 0) / samples.length;
      expect(Math.abs(naive - offset)).toBeGreaterThan(1.5);
      expect(sync.toLocal(10_000 + offset)).toBeCloseTo(10_000, 0);
      expect(sync.toRemote(10_000)).toBeCloseTo(10_000 + offset, 0);
    }
  });

  it('uses the single-stamp formula when the remote gives one time (t1 = t2)', () => {
    const sync = new ClockSync();
    sync.add({ t0: 100, t1: 1_060, t3: 110 }); // ((1060 - 100) + (1060 - 110)) / 2
    expect(sync.offsetMs).toBe(955);
    expect(sync.rttMs).toBe(10);
  });

  it('forgets samples outside its window, so a clock that jumps is followed', () => {
    const sync = new ClockSync({ window: 8 });
    for (const s of exchanges(10, 8, 1)) sync.add(s);
    for (const s of exchanges(500, 8, 2)) sync.add(s);
    expect(Math.abs(sync.offsetMs! - 500)).toBeLessThan(5);
    expect(sync.estimate()?.samples).toBe(8);
  });

  it('ignores impossible samples and says so', () => {
    const sync = new ClockSync();
    expect(sync.offsetMs).toBeNull();
    expect(sync.add({ t0: 10, t1: 0, t3: 5 })).toBe(false); // pong before ping
    expect(sync.add({ t0: 0, t1: Number.NaN, t3: 5 })).toBe(false);
    expect(sync.add({ t0: 0, t1: 10, t2: 9, t3: 5 })).toBe(false); // answered before it arrived
    expect(sync.rejected).toBe(3);
    expect(sync.toLocal(42)).toBe(42);
  });
});
