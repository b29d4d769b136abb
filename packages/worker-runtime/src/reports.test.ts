import { describe, expect, it } from 'vitest';
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

function harness(maxHoldMs = 1000): { reports: StepReports; sent: number[]; clock: { t: number } } {
  const sent: number[] = [];
  const clock = { t: 0 };
  const reports = new StepReports(
    (m) => sent.push(m.step),
    () => clock.t,
    maxHoldMs,
  );
  return { reports, sent, clock };
}

describe('StepReports', () => {
  it('sends a report at once unless it may be held', () => {
    const { reports, sent } = harness();
    reports.add(report(0), false);
    expect(sent).toEqual([0]);
    expect(reports.pending).toBe(0);
  });

  it('holds a round of reports and sends them in order with the round end', () => {
    const { reports, sent } = harness();
    for (let s = 0; s < 4; s++) reports.add(report(s), true);
    expect(sent).toEqual([]);
    expect(reports.pending).toBe(4);
    reports.add(report(4), false);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
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
});
