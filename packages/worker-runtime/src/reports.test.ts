import { describe, expect, it } from 'vitest';
import { MAX_REPORTS_PER_MESSAGE, parseToCoordinator } from '@peertrain/protocol';
import type { ToCoordinator } from '@peertrain/protocol';
import { StepReports } from './reports.ts';

type StepDoneMsg = Extract<ToCoordinator, { type: 'stepDone' }>;

const report = (step: number): StepDoneMsg => ({
  type: 'stepDone',
  runId: 1,
  step,
  samples: 4,
  computeMs: 1,
  commMs: 0,
  bytesSent: 0,
});

/** `sent`: the steps reported, in order; `messages`: how many messages carried them. */
function harness(maxHoldMs = 1000): {
  reports: StepReports;
  sent: number[];
  messages: string[];
  clock: { t: number };
} {
  const sent: number[] = [];
  const messages: string[] = [];
  const clock = { t: 0 };
  const reports = new StepReports(
    (m) => {
      messages.push(m.type);
      for (const r of m.type === 'stepsDone' ? m.reports : [m]) sent.push(r.step);
    },
    () => clock.t,
    maxHoldMs,
  );
  return { reports, sent, messages, clock };
}

describe('StepReports', () => {
  it('sends a report at once unless it may be held', () => {
    const { reports, sent } = harness();
    reports.add(report(0), false);
    expect(sent).toEqual([0]);
    expect(reports.pending).toBe(0);
  });

  it('holds a round of reports and sends them in order, in one message, with the round end', () => {
    const { reports, sent, messages } = harness();
    for (let s = 0; s < 4; s++) reports.add(report(s), true);
    expect(sent).toEqual([]);
    expect(reports.pending).toBe(4);
    reports.add(report(4), false);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    expect(messages).toEqual(['stepsDone']);
    reports.add(report(5), false);
    expect(messages).toEqual(['stepsDone', 'stepDone']); // one report goes as it is
  });

  it('splits a long hold into messages of at most MAX_REPORTS_PER_MESSAGE reports', () => {
    const { reports, sent, messages } = harness();
    const n = MAX_REPORTS_PER_MESSAGE + 3;
    for (let s = 0; s < n; s++) reports.add(report(s), true);
    reports.flush();
    expect(messages).toEqual(['stepsDone', 'stepsDone']);
    expect(sent).toEqual(Array.from({ length: n }, (_, s) => s));
    // What the coordinator accepts.
    expect(() => parseToCoordinator({ type: 'stepsDone', reports: [report(0), report(1)] })).not.toThrow();
    expect(() => parseToCoordinator({ type: 'stepsDone', reports: [] })).toThrow();
  });

  it('sends what is held once the oldest has waited maxHoldMs, and on flush', () => {
    const { reports, sent, clock } = harness(100);
    reports.add(report(0), true);
    clock.t = 99;
    reports.add(report(1), true);
    expect(sent).toEqual([]);
    clock.t = 100;
    reports.add(report(2), true);
    expect(sent).toEqual([0, 1, 2]);
    clock.t = 150;
    reports.add(report(3), true); // the clock restarts with the next held report
    clock.t = 249;
    reports.add(report(4), true);
    expect(sent).toEqual([0, 1, 2]);
    reports.flush();
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    reports.flush();
    expect(sent).toHaveLength(5);
  });

  it('drops held reports of the steps an elastic epoch redoes, and keeps the earlier ones', () => {
    const { reports, sent } = harness();
    for (let s = 4; s < 7; s++) reports.add(report(s), true);
    reports.dropFrom(5);
    expect(reports.pending).toBe(1);
    reports.add(report(5), false); // the redone step's report
    expect(sent).toEqual([4, 5]);
  });
});
