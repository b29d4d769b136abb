// Interleaved 1F1B and ZB-H1 against 1F1B: well formed, deadlock free, the bubble their theory gives
// (below 1F1B's), and the activations they hold.
import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import type { AnyScheduleName, AnyStageOps } from './index.ts';
import {
  assertSchedule,
  bubbleTheory,
  formatOps,
  interleavedOrder,
  peakInFlight,
  schedule,
  scheduleIssues,
  simulate,
} from './index.ts';

// Unit costs: forward 1, backward 2 (split: input part 1, weight part 1, the simulator's default).
const UNIT = { forward: 1, backward: 2 };
const V = 2;

/** The grid the issue asks for: P = 2, 3, 4 by M = 4, 8, 16. */
const GRID: [number, number][] = [2, 3, 4].flatMap((p) => [4, 8, 16].map((m): [number, number] => [p, m]));

/** The ops of `name` on the grid point, checked: well formed, and simulated without a deadlock. */
function run(name: AnyScheduleName, p: number, m: number, v = 1) {
  const ops = schedule(name, p, m, { virtualStages: v });
  expect(scheduleIssues(ops, p, m, v)).toEqual([]);
  const sim = simulate(ops, UNIT); // throws ScheduleDeadlockError on a deadlock
  expect(sim.peakInFlight).toEqual(ops.map((l) => peakInFlight(l)));
  return { ops, sim };
}

describe('interleaved 1F1B', () => {
  it('orders passes in groups of P through each chunk', () => {
    const order = interleavedOrder(2, 5, 2).map(({ mb, chunk }) => `${mb}c${chunk}`);
    expect(order).toEqual(['0c0', '1c0', '0c1', '1c1', '2c0', '3c0', '2c1', '3c1', '4c0', '4c1']);
  });

  it('builds P = 2, M = 4, V = 2 as Megatron-LM does, the last device sending to the first', () => {
    const ops = schedule('interleaved', 2, 4, { virtualStages: 2 });
    expect(ops.map((l) => formatOps(l))).toEqual([
      'F0c0 F1c0 F0c1 F1c1 F2c0 B0c1 F3c0 B1c1 F2c1 B0c0 F3c1 B1c0 B2c1 B3c1 B2c0 B3c0 U',
      'F0c0 F1c0 F0c1 B0c1 F1c1 B1c1 F2c0 B0c0 F3c0 B1c0 F2c1 B2c1 F3c1 B3c1 B2c0 B3c0 U',
    ]);
    // Device 1 chunk 0 (virtual stage 1) feeds device 0 chunk 1 (virtual stage 2) and gets its gradient.
    const d1 = ops[1] ?? [];
    expect(d1).toContainEqual({ kind: 'sendAct', mb: 0, to: 0, chunk: 0 });
    expect(d1).toContainEqual({ kind: 'recvGrad', mb: 0, from: 0, chunk: 0 });
    expect(ops[0]).toContainEqual({ kind: 'recvAct', mb: 0, from: 1, chunk: 1 });
    // Virtual stage 0 receives nothing, virtual stage 3 (device 1 chunk 1) sends no activations.
    expect(formatOps(ops[0] ?? [], { comm: true })).toMatch(/^F0c0 >a0c0 F1c0 >a1c0 <a0c1 F0c1 >a0c1/);
    expect(formatOps(d1, { comm: true })).toMatch(/<a0c1 F0c1 B0c1 >g0c1/);
  });

  it.each(GRID)('P=%i M=%i V=2 is well formed, idles below 1F1B, (P-1)/(VM+P-1) when P | M', (p, m) => {
    const { sim } = run('interleaved', p, m, V);
    const oneFOneB = run('1f1b', p, m).sim;
    const theory = bubbleTheory('interleaved', p, m, V);
    if (m % p === 0) expect(Math.abs(sim.idleFraction - theory)).toBeLessThan(1e-9);
    else expect(sim.idleFraction).toBeGreaterThan(theory); // the phantom micro-batches' holes
    expect(sim.idleFraction).toBeLessThan(oneFOneB.idleFraction);
  });

  it('is well formed and below 1F1B for P in 2..6, M in P..16, V in 2..4; meets theory when P | M', () => {
    const misses: string[] = [];
    for (let p = 2; p <= 6; p++) {
      for (let m = p; m <= 16; m++) {
        const oneFOneB = simulate(schedule('1f1b', p, m), UNIT).idleFraction;
        for (let v = 2; v <= 4; v++) {
          const ops = schedule('interleaved', p, m, { virtualStages: v });
          const issues = scheduleIssues(ops, p, m, v);
          const idle = simulate(ops, UNIT).idleFraction;
          const off = Math.abs(idle - bubbleTheory('interleaved', p, m, v));
          if (issues.length > 0 || idle >= oneFOneB || (m % p === 0 && off > 1e-9))
            misses.push(`P=${p} M=${m} V=${v}: idle ${idle}, ${issues.join('; ')}`);
        }
      }
    }
    expect(misses).toEqual([]);
  });

  it('with V = 1 is 1F1B with a doubled warm-up: same bubble, and it hides message latency', () => {
    const ops = schedule('interleaved', 4, 8, { virtualStages: 1 });
    expect(scheduleIssues(ops, 4, 8)).toEqual([]);
    const free = simulate(ops, UNIT).idleFraction;
    expect(Math.abs(free - bubbleTheory('1f1b', 4, 8))).toBeLessThan(1e-9);
    const slow = { ...UNIT, comm: 0.5 };
    expect(simulate(ops, slow).idleFraction).toBeLessThan(
      simulate(schedule('1f1b', 4, 8), slow).idleFraction - 0.05,
    );
    expect(ops.map((l) => peakInFlight(l))).toEqual([7, 5, 3, 1]);
  });

  it('holds (V - 1) P + 2 (P - s) - 1 chunk passes on stage s when P | M (Megatron-LM warm-up + 1)', () => {
    const ops = schedule('interleaved', 4, 8, { virtualStages: 2 });
    expect(ops.map((l) => peakInFlight(l))).toEqual([11, 9, 7, 5]);
  });

  it('refuses shapes it cannot run with a ConfigError', () => {
    expect(() => schedule('interleaved', 1, 4, { virtualStages: 2 })).toThrow(/needs stages >= 2/);
    expect(() => schedule('interleaved', 4, 3, { virtualStages: 2 })).toThrow(
      /needs microBatches >= stages, got M = 3 < P = 4/,
    );
    expect(() => schedule('interleaved', 4, 8, { virtualStages: 0 })).toThrow(ConfigError);
    expect(() => schedule('interleaved', 4, 8, { virtualStages: 1.5 })).toThrow(/virtualStages must be/);
    expect(() => schedule('1f1b', 4, 8, { virtualStages: 2 })).toThrow(
      /only interleaved holds several chunks/,
    );
    expect(() => bubbleTheory('interleaved', 4, 2, 2)).toThrow(ConfigError);
  });
});

describe('ZB-H1', () => {
  it('puts off s weight-gradient passes on stage s and runs them in the tail', () => {
    const [s0, s1, s2] = schedule('zb-h1', 3, 5).map((l) => formatOps(l));
    expect(s0).toBe('F0 F1 F2 I0 W0 F3 I1 W1 F4 I2 W2 I3 W3 I4 W4 U'); // 1F1B with B = I W
    expect(s1).toBe('F0 F1 I0 F2 I1 W0 F3 I2 W1 F4 I3 W2 I4 W3 W4 U'); // one W put off
    expect(s2).toBe('F0 I0 F1 I1 F2 I2 W0 F3 I3 W1 F4 I4 W2 W3 W4 U'); // two put off
    // The gradient goes back after the input part; the weight part sends nothing.
    expect(formatOps(schedule('zb-h1', 2, 1)[1] ?? [], { comm: true })).toBe('<a0 F0 I0 >g0 W0 U');
  });

  it.each(GRID)("P=%i M=%i is well formed, idles (P-1)/(3M+P-1), a third of 1F1B's bubble time", (p, m) => {
    const { ops, sim } = run('zb-h1', p, m);
    const oneFOneB = run('1f1b', p, m);
    expect(Math.abs(sim.idleFraction - bubbleTheory('zb-h1', p, m))).toBeLessThan(1e-9);
    expect(sim.idleFraction).toBeLessThan(oneFOneB.sim.idleFraction);
    // Idle time per stage: (P - 1)(f + b - w) = P - 1 against 1F1B's (P - 1)(f + b) = 3 (P - 1).
    expect(sim.makespan - 3 * m).toBeCloseTo(p - 1, 9);
    expect(oneFOneB.sim.makespan - 3 * m).toBeCloseTo(3 * (p - 1), 9);
    // Peak activations: every stage min(P, M), 1F1B's worst stage; never above it.
    expect(sim.peakInFlight).toEqual(ops.map(() => Math.min(p, m)));
    expect(Math.max(...sim.peakInFlight)).toBeLessThanOrEqual(Math.max(...oneFOneB.sim.peakInFlight));
  });

  it('meets its theory for P in 1..6, M in 1..16 (M < P included)', () => {
    const misses: string[] = [];
    for (let p = 1; p <= 6; p++) {
      for (let m = 1; m <= 16; m++) {
        const ops = schedule('zb-h1', p, m);
        const issues = scheduleIssues(ops, p, m);
        const idle = simulate(ops, UNIT).idleFraction;
        if (issues.length > 0 || Math.abs(idle - bubbleTheory('zb-h1', p, m)) > 1e-9)
          misses.push(`P=${p} M=${m}: idle ${idle}, ${issues.join('; ')}`);
      }
    }
    expect(misses).toEqual([]);
  });

  it('costs the two parts apart: a heavier weight part fills more of the tail', () => {
    const ops = schedule('zb-h1', 4, 8);
    const sim = simulate(ops, { forward: 1, backward: 3, backwardInput: 1, backwardWeight: 2 });
    expect(sim.busy).toEqual([32, 32, 32, 32]);
    // Fill and drain (P - 1)(f + b - w) = 0: no bubble at all.
    expect(sim.idleFraction).toBeLessThan(simulate(ops, UNIT).idleFraction);
  });
});

describe('the checks on the new ops', () => {
  const broken = (ops: readonly AnyStageOps[]): string[][] => ops.map((l) => [formatOps(l, { comm: true })]);

  it('flag a broken interleaved list and a broken ZB-H1 list', () => {
    const inter = schedule('interleaved', 2, 4, { virtualStages: 2 }).map((l) => [...l]);
    // Stage 0 forgets to receive mb 1's activations for chunk 1 from device 1.
    const d0 = inter[0] ?? [];
    d0.splice(
      d0.findIndex((op) => op.kind === 'recvAct' && op.mb === 1 && op.chunk === 1),
      1,
    );
    const issues = scheduleIssues(inter, 2, 4, 2).join('\n');
    expect(issues).toMatch(/stage 0 chunk 1 mb 1: recvAct appears 0 times, expected 1/);
    expect(issues).toMatch(/act 1:0->0:1 mb 1: 1 send\(s\) never received/);
    expect(() => assertSchedule(inter, 2, 4, 2)).toThrow(/invalid schedule for P=2, M=4, V=2/);

    const zb = schedule('zb-h1', 3, 4).map((l) => [...l]);
    const s1 = zb[1] ?? [];
    // Move stage 1's W0 to the front: a weight gradient before its input gradient (and its forward).
    const [w] = s1.splice(
      s1.findIndex((op) => op.kind === 'backwardWeight' && op.mb === 0),
      1,
    );
    if (w) s1.unshift(w);
    expect(scheduleIssues(zb, 3, 4).join('\n')).toMatch(
      /stage 1: weight gradient of mb 0 before its input gradient \(ops \d+ and 0\)/,
    );
    expect(broken(zb)).toHaveLength(3);
  });

  it('flag a chunk out of range, a wrong ring neighbour, and a whole backward mixed with a split one', () => {
    const ops = schedule('zb-h1', 2, 2).map((l) => [...l]);
    ops[0]?.splice(1, 0, { kind: 'backward', mb: 1 }, { kind: 'forward', mb: 0, chunk: 2 });
    const issues = scheduleIssues(ops, 2, 2).join('\n');
    expect(issues).toMatch(/stage 0 op 2 \(forward\): chunk 2 out of \[0, 1\)/);
    expect(issues).toMatch(/stage 0 mb 1: backwardInput appears 1 times, expected 0/);
    expect(issues).toMatch(/stage 0 mb 1: backwardWeight appears 1 times, expected 0/);

    const ring = schedule('interleaved', 3, 3, { virtualStages: 2 }).map((l) => [...l]);
    const d2 = ring[2] ?? [];
    const i = d2.findIndex((op) => op.kind === 'sendAct' && op.chunk === 0);
    d2[i] = { kind: 'sendAct', mb: 0, to: 1, chunk: 0 }; // device 2 chunk 0 must send to device 0
    expect(scheduleIssues(ring, 3, 3, 2).join('\n')).toMatch(
      /stage 2 op \d+ \(sendAct\): names stage 1, expected 0/,
    );
  });
});
