import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import type { Op, Span } from './index.ts';
import { ScheduleDeadlockError, schedule, simulate } from './index.ts';

/** Compute spans only, as [kind letter + mb, start, end]. */
function computeTimeline(spans: readonly Span[]): [string, number, number][] {
  return spans
    .filter((s) => s.kind === 'forward' || s.kind === 'backward')
    .map((s) => [`${s.kind === 'forward' ? 'F' : 'B'}${s.mb}`, s.start, s.end]);
}

/** The error `fn` throws, or null. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

describe('simulate', () => {
  it('times a two-stage naive run with message latency', () => {
    const sim = simulate(schedule('naive', 2, 1), { forward: 1, backward: 2, comm: 0.5 });
    expect(sim.spans[0]).toEqual([
      { kind: 'forward', mb: 0, start: 0, end: 1 },
      { kind: 'sendAct', mb: 0, start: 1, end: 1 },
      { kind: 'recvGrad', mb: 0, start: 1, end: 5 }, // waits: 1.5 (arrive) + 1 (F) + 2 (B) + 0.5
      { kind: 'backward', mb: 0, start: 5, end: 7 },
      { kind: 'optimizer', mb: null, start: 7, end: 7 },
    ]);
    expect(sim.spans[1]).toEqual([
      { kind: 'recvAct', mb: 0, start: 0, end: 1.5 },
      { kind: 'forward', mb: 0, start: 1.5, end: 2.5 },
      { kind: 'backward', mb: 0, start: 2.5, end: 4.5 },
      { kind: 'sendGrad', mb: 0, start: 4.5, end: 4.5 },
      { kind: 'optimizer', mb: null, start: 4.5, end: 4.5 },
    ]);
    expect(sim.makespan).toBe(7);
    expect(sim.busy).toEqual([3, 3]);
    expect(sim.idleFraction).toBeCloseTo(1 - 6 / 14, 12);
    expect(sim.peakInFlight).toEqual([1, 1]);
  });

  it('lets the slowest stage set the pace (per-stage costs)', () => {
    const sim = simulate(schedule('gpipe', 2, 4), [
      { forward: 1, backward: 2 },
      { forward: 2, backward: 4, optimizer: 1 },
    ]);
    expect(computeTimeline(sim.spans[1] ?? [])).toEqual([
      ['F0', 1, 3],
      ['F1', 3, 5],
      ['F2', 5, 7],
      ['F3', 7, 9],
      ['B3', 9, 13],
      ['B2', 13, 17],
      ['B1', 17, 21],
      ['B0', 21, 25],
    ]);
    expect(computeTimeline(sim.spans[0] ?? []).slice(4)).toEqual([
      ['B3', 13, 15],
      ['B2', 17, 19],
      ['B1', 21, 23],
      ['B0', 25, 27],
    ]);
    expect(sim.makespan).toBe(27);
    expect(sim.busy).toEqual([12, 25]);
  });

  it('shows that comm latency widens the bubble', () => {
    const free = simulate(schedule('1f1b', 4, 8), { forward: 1, backward: 2 });
    const slow = simulate(schedule('1f1b', 4, 8), { forward: 1, backward: 2, comm: 0.5 });
    expect(slow.makespan).toBeGreaterThan(free.makespan);
    expect(slow.idleFraction).toBeGreaterThan(free.idleFraction);
  });

  it('throws ScheduleDeadlockError listing the blocked receives', () => {
    // Stage 0 waits for a gradient before sending the activations stage 1 needs to produce it.
    const ops: Op[][] = [
      [
        { kind: 'recvGrad', mb: 0, from: 1 },
        { kind: 'forward', mb: 0 },
        { kind: 'sendAct', mb: 0, to: 1 },
        { kind: 'backward', mb: 0 },
      ],
      [
        { kind: 'recvAct', mb: 0, from: 0 },
        { kind: 'forward', mb: 0 },
        { kind: 'backward', mb: 0 },
        { kind: 'sendGrad', mb: 0, to: 0 },
      ],
    ];
    const caught = thrown(() => simulate(ops, { forward: 1, backward: 2 }));
    expect(caught).toBeInstanceOf(ScheduleDeadlockError);
    const err = caught as ScheduleDeadlockError;
    expect(err.name).toBe('ScheduleDeadlockError');
    expect(err.blocked).toEqual([
      { stage: 0, index: 0, op: { kind: 'recvGrad', mb: 0, from: 1 } },
      { stage: 1, index: 0, op: { kind: 'recvAct', mb: 0, from: 0 } },
    ]);
    expect(err.message).toMatch(/stage 0 op 0 recvGrad mb 0 from 1/);
  });

  it('reports a deadlock part way through, after the other stages finish', () => {
    const ops = schedule('gpipe', 3, 2).map((l) => [...l]);
    // Stage 2 never sends the gradient of mb 0: stage 1 blocks at its last receive, stage 0 behind it.
    const s2 = ops[2] ?? [];
    s2.splice(
      s2.findIndex((op) => op.kind === 'sendGrad' && op.mb === 0),
      1,
    );
    const err = thrown(() => simulate(ops, { forward: 1, backward: 1 }));
    expect(err).toBeInstanceOf(ScheduleDeadlockError);
    expect((err as ScheduleDeadlockError).blocked).toEqual([
      { stage: 0, index: 6, op: { kind: 'recvGrad', mb: 0, from: 1 } },
      { stage: 1, index: 9, op: { kind: 'recvGrad', mb: 0, from: 2 } },
    ]);
  });

  it('refuses bad costs with a ConfigError', () => {
    const ops = schedule('gpipe', 2, 2);
    expect(() => simulate(ops, { forward: -1, backward: 1 })).toThrow(ConfigError);
    expect(() => simulate(ops, { forward: 1, backward: Number.NaN })).toThrow(ConfigError);
    expect(() => simulate(ops, { forward: 1, backward: 1, comm: Number.POSITIVE_INFINITY })).toThrow(
      ConfigError,
    );
    expect(() => simulate(ops, [{ forward: 1, backward: 1 }])).toThrow(/expected 2 per-stage costs, got 1/);
  });

  it('handles zero costs and no stages', () => {
    const zero = simulate(schedule('1f1b', 3, 3), { forward: 0, backward: 0 });
    expect(zero.makespan).toBe(0);
    expect(zero.idleFraction).toBe(0);
    expect(simulate([], { forward: 1, backward: 1 })).toEqual({
      spans: [],
      makespan: 0,
      busy: [],
      idleFraction: 0,
      peakInFlight: [],
    });
  });
});
