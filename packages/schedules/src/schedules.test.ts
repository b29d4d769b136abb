import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import type { Op, ScheduleName, StageOps } from './index.ts';
import {
  ALL_SCHEDULE_NAMES,
  SCHEDULE_NAMES,
  bubbleTheory,
  formatOps,
  isAnySchedule,
  isSchedule,
  peakInFlight,
  scheduleIssues,
  schedule,
  simulate,
} from './index.ts';

// The ideal run the bubble formula describes: equal stages, backward = 2 x forward, free comms.
const IDEAL = { forward: 1, backward: 2 };

/** Every (name, P, M) the spec sweeps: P in 1..6, M in 1..16, naive only with M = 1. */
function sweep(): [ScheduleName, number, number][] {
  const cases: [ScheduleName, number, number][] = [];
  for (const name of SCHEDULE_NAMES) {
    for (let p = 1; p <= 6; p++) {
      for (let m = 1; m <= 16; m++) if (name !== 'naive' || m === 1) cases.push([name, p, m]);
    }
  }
  return cases;
}

/** Problems with activation memory: 1F1B holds at most min(P - s, M) per stage, GPipe exactly M. */
function memoryIssues(name: ScheduleName, ops: readonly StageOps[], m: number): string[] {
  const p = ops.length;
  const issues: string[] = [];
  ops.forEach((list, s) => {
    const peak = peakInFlight(list);
    if (name === '1f1b' && (peak > p || peak > p - s))
      issues.push(`stage ${s} holds ${peak} > P - s = ${p - s}`);
    if (name === 'gpipe' && peak !== m) issues.push(`stage ${s} holds ${peak}, GPipe holds M = ${m}`);
    if (name === 'naive' && peak !== 1) issues.push(`stage ${s} holds ${peak}, naive holds 1`);
  });
  return issues;
}

/** |simulated idle - expected| for the ideal run: (P-1)/(M+P-1) for the pipelines, (P-1)/P naive. */
function idleError(name: ScheduleName, ops: readonly StageOps[], m: number): number {
  const p = ops.length;
  const expected = name === 'naive' ? (p - 1) / p : bubbleTheory(name, p, m);
  return Math.abs(simulate(ops, IDEAL).idleFraction - expected);
}

describe('schedule names', () => {
  it('lists the three executor schedules and recognises only them', () => {
    expect(SCHEDULE_NAMES).toEqual(['naive', 'gpipe', '1f1b']);
    expect(isSchedule('1f1b')).toBe(true);
    expect(isSchedule('1F1B')).toBe(false);
    expect(isSchedule('zb-h1')).toBe(false);
    expect(isSchedule(3)).toBe(false);
  });

  it("lists every schedule it builds, the executor's first", () => {
    expect(ALL_SCHEDULE_NAMES).toEqual(['naive', 'gpipe', '1f1b', 'interleaved', 'zb-h1']);
    expect(isAnySchedule('interleaved')).toBe(true);
    expect(isAnySchedule('zb-h1')).toBe(true);
    expect(isAnySchedule('zb-h2')).toBe(false);
  });
});

describe('schedule shapes', () => {
  it('builds GPipe as all forwards, then backwards in reverse, then the flush', () => {
    const ops = schedule('gpipe', 3, 3);
    expect(ops.map((l) => formatOps(l))).toEqual([
      'F0 F1 F2 B2 B1 B0 U',
      'F0 F1 F2 B2 B1 B0 U',
      'F0 F1 F2 B2 B1 B0 U',
    ]);
    expect(formatOps(ops[1] ?? [], { comm: true })).toBe(
      '<a0 F0 >a0 <a1 F1 >a1 <a2 F2 >a2 <g2 B2 >g2 <g1 B1 >g1 <g0 B0 >g0 U',
    );
    expect(formatOps(ops[0] ?? [], { comm: true })).toBe('F0 >a0 F1 >a1 F2 >a2 <g2 B2 <g1 B1 <g0 B0 U');
  });

  it('builds 1F1B as warm-up P-s-1 forwards, one-forward-one-backward, cool-down', () => {
    expect(schedule('1f1b', 4, 6).map((l) => formatOps(l))).toEqual([
      'F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 U',
      'F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5 U',
      'F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5 U',
      'F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 U',
    ]);
    // Fewer micro-batches than stages: the warm-up is cut at M.
    expect(schedule('1f1b', 4, 2).map((l) => formatOps(l))).toEqual([
      'F0 F1 B0 B1 U',
      'F0 F1 B0 B1 U',
      'F0 F1 B0 B1 U',
      'F0 B0 F1 B1 U',
    ]);
  });

  it('builds naive as one forward down the stages and one backward up', () => {
    const ops = schedule('naive', 3, 1);
    expect(ops.map((l) => formatOps(l, { comm: true }))).toEqual([
      'F0 >a0 <g0 B0 U',
      '<a0 F0 >a0 <g0 B0 >g0 U',
      '<a0 F0 B0 >g0 U',
    ]);
  });

  it('refuses invalid P and M with a ConfigError naming every issue', () => {
    for (const [p, m] of [
      [0, 1],
      [1, 0],
      [-2, 4],
      [2.5, 4],
      [4, Number.NaN],
      [Number.POSITIVE_INFINITY, 1],
    ] as const) {
      expect(() => schedule('gpipe', p, m)).toThrow(ConfigError);
      expect(() => bubbleTheory('gpipe', p, m)).toThrow(ConfigError);
    }
    const err: unknown = (() => {
      try {
        schedule('1f1b', 0, 0);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toHaveLength(2);
    expect(() => schedule('naive', 4, 2)).toThrow(/microBatches must be 1/);
    // A name that slipped past the type (from a config file, say) is refused too.
    expect(() => schedule('pipedream' as ScheduleName, 2, 2)).toThrow(/unknown schedule pipedream/);
  });
});

describe('bubbleTheory', () => {
  it('is (P - 1) / (M + P - 1) for naive, GPipe and 1F1B', () => {
    expect(bubbleTheory('1f1b', 1, 8)).toBe(0);
    expect(bubbleTheory('gpipe', 4, 1)).toBe(3 / 4);
    expect(bubbleTheory('naive', 4, 1)).toBe(3 / 4);
    expect(bubbleTheory('1f1b', 4, 12)).toBe(3 / 15);
  });
});

describe('every schedule, P in 1..6, M in 1..16', () => {
  const cases = sweep();

  it('covers 6 naive, 96 gpipe and 96 1f1b cases', () => {
    expect(cases).toHaveLength(6 + 96 + 96);
  });

  it.each(cases)(
    '%s P=%i M=%i is well formed, runs without deadlock, and meets its memory and bubble',
    (name, p, m) => {
      const ops = schedule(name, p, m);
      // Each forward and backward once, in order, wrapped by matched sends and receives; one flush.
      expect(scheduleIssues(ops, p, m)).toEqual([]);
      // Per stage: 2M computes, M of each comm op per neighbour, one optimizer.
      const neighbours = (s: number): number => (s > 0 ? 1 : 0) + (s < p - 1 ? 1 : 0);
      ops.forEach((list, s) => expect(list).toHaveLength(2 * m + 2 * m * neighbours(s) + 1));
      expect(memoryIssues(name, ops, m)).toEqual([]);
      const sim = simulate(ops, IDEAL); // throws ScheduleDeadlockError on a deadlock
      expect(sim.peakInFlight).toEqual(ops.map((l) => peakInFlight(l)));
      if (name === '1f1b') expect(sim.peakInFlight).toEqual(ops.map((_, s) => Math.min(p - s, m)));
      expect(sim.makespan).toBeCloseTo((m + p - 1) * (IDEAL.forward + IDEAL.backward), 9);
      expect(idleError(name, ops, m)).toBeLessThan(1e-9);
    },
  );
});

describe('the checks catch broken schedules', () => {
  it('flags a "1F1B" that keeps GPipe\'s memory', () => {
    const impostor = schedule('gpipe', 4, 8); // labelled 1f1b, but holds M on every stage
    expect(scheduleIssues(impostor, 4, 8)).toEqual([]);
    expect(memoryIssues('1f1b', impostor, 8)).toHaveLength(4);
  });

  it('flags a GPipe that runs micro-batches one after another (no overlap)', () => {
    const p = 4;
    const m = 6;
    // Valid in structure and deadlock free, but every micro-batch drains the pipeline: idle (P-1)/P.
    const serial = schedule('gpipe', p, 1).map((list): Op[] => [
      ...Array.from({ length: m }, (_, mb) =>
        list.flatMap((op) => (op.kind === 'optimizer' ? [] : [{ ...op, mb }])),
      ).flat(),
      { kind: 'optimizer' },
    ]);
    expect(scheduleIssues(serial, p, m)).toEqual([]);
    expect(simulate(serial, IDEAL).idleFraction).toBeCloseTo((p - 1) / p, 9);
    expect(idleError('gpipe', serial, m)).toBeGreaterThan(0.1);
  });
});
