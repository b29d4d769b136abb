import { describe, expect, it } from 'vitest';
import type { Op, StageOps } from './index.ts';
import { ScheduleError, assertSchedule, schedule, scheduleIssues } from './index.ts';

const P = 3;
const M = 4;

/** A fresh valid 1F1B schedule, as mutable lists, to break on purpose. */
function fresh(): Op[][] {
  return schedule('1f1b', P, M).map((list) => [...list]);
}

/** Index of the first op on `stage` matching `pred`; fails the test when there is none. */
function find(ops: Op[][], stage: number, pred: (op: Op) => boolean): number {
  const i = ops[stage]?.findIndex(pred) ?? -1;
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
}

function issuesOf(ops: readonly StageOps[]): string {
  return scheduleIssues(ops, P, M).join('\n');
}

describe('scheduleIssues', () => {
  it('passes the built schedule', () => {
    expect(scheduleIssues(fresh(), P, M)).toEqual([]);
    expect(() => assertSchedule(fresh(), P, M)).not.toThrow();
  });

  it('catches a missing forward', () => {
    const ops = fresh();
    ops[1]?.splice(
      find(ops, 1, (op) => op.kind === 'forward' && op.mb === 2),
      1,
    );
    expect(issuesOf(ops)).toMatch(/stage 1 mb 2: forward appears 0 times, expected 1/);
  });

  it('catches a duplicated backward', () => {
    const ops = fresh();
    ops[2]?.push({ kind: 'backward', mb: 0 });
    expect(issuesOf(ops)).toMatch(/stage 2 mb 0: backward appears 2 times/);
  });

  it('catches a backward before its forward', () => {
    const ops = fresh();
    const list = ops[2] ?? [];
    const f = find(ops, 2, (op) => op.kind === 'forward' && op.mb === 0);
    const b = find(ops, 2, (op) => op.kind === 'backward' && op.mb === 0);
    [list[f], list[b]] = [list[b] as Op, list[f] as Op];
    expect(issuesOf(ops)).toMatch(/stage 2: backward of mb 0 before its forward/);
  });

  it('catches a forward before its activations arrive', () => {
    const ops = fresh();
    const list = ops[1] ?? [];
    const r = find(ops, 1, (op) => op.kind === 'recvAct' && op.mb === 1);
    const [recv] = list.splice(r, 1);
    list.push(recv as Op);
    expect(issuesOf(ops)).toMatch(/stage 1: forward of mb 1 before its activations arrive/);
  });

  it('catches a send with no receive and a receive from the wrong stage', () => {
    const ops = fresh();
    ops[2]?.splice(
      find(ops, 2, (op) => op.kind === 'recvAct' && op.mb === 3),
      1,
    );
    expect(issuesOf(ops)).toMatch(/act 1->2 mb 3: 1 send\(s\) never received/);
    const other = fresh();
    const i = find(other, 2, (op) => op.kind === 'recvAct' && op.mb === 0);
    (other[2] ?? [])[i] = { kind: 'recvAct', mb: 0, from: 0 };
    expect(issuesOf(other)).toMatch(/stage 2 op \d+ \(recvAct\): names stage 0, expected 1/);
    expect(issuesOf(other)).toMatch(/act 0->2 mb 0: 1 receive\(s\) with no send/);
  });

  it('catches comms past the ends of the pipeline', () => {
    const ops = fresh();
    ops[0]?.unshift({ kind: 'recvAct', mb: 0, from: -1 });
    expect(issuesOf(ops)).toMatch(/names stage -1, expected none/);
    expect(issuesOf(ops)).toMatch(/stage 0 mb 0: recvAct appears 1 times, expected 0/);
  });

  it('catches micro-batches out of range', () => {
    const ops = fresh();
    ops[0]?.push({ kind: 'forward', mb: M }, { kind: 'forward', mb: 0.5 });
    expect(issuesOf(ops)).toMatch(/micro-batch 4 out of \[0, 4\)/);
    expect(issuesOf(ops)).toMatch(/micro-batch 0.5 out of/);
  });

  it('catches a missing or early optimizer step', () => {
    const ops = fresh();
    ops[1]?.pop();
    expect(issuesOf(ops)).toMatch(/stage 1: optimizer appears 0 times, expected 1/);
    const early = fresh();
    early[0]?.pop();
    early[0]?.unshift({ kind: 'optimizer' });
    expect(issuesOf(early)).toMatch(/stage 0: optimizer \(op 0\) before the last backward/);
  });

  it('catches the wrong number of stages', () => {
    expect(issuesOf(fresh().slice(0, 2))).toMatch(/expected 3 stage lists, got 2/);
  });

  it('caps the list and assertSchedule throws a named error', () => {
    const empty = Array.from({ length: P }, () => []);
    const issues = scheduleIssues(empty, P, 16);
    expect(issues).toHaveLength(21);
    expect(issues.at(-1)).toMatch(/^and \d+ more$/);
    let caught: unknown;
    try {
      assertSchedule(empty, P, M);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ScheduleError);
    expect((caught as ScheduleError).name).toBe('ScheduleError');
    expect((caught as ScheduleError).issues.length).toBeGreaterThan(0);
  });
});
