import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/coordinator';
import { createRunController, type RunOutcome } from './runController.ts';

const report = { config: parseRunConfig({}), finalLoss: 0.1 } as RunReport;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('run controller', () => {
  it('tracks one run at a time and keeps its report', async () => {
    const runs = createRunController();
    const seen: RunOutcome[] = [];
    runs.subscribe((s) => seen.push(s));
    const d = deferred<RunReport>();
    expect(runs.start(() => d.promise)).toBe(true);
    expect(runs.start(() => Promise.resolve(report))).toBe(false);
    expect(runs.state()).toEqual({ busy: true, report: null, error: null });
    d.resolve(report);
    await d.promise;
    await Promise.resolve();
    expect(runs.state()).toEqual({ busy: false, report, error: null });
    expect(seen).toHaveLength(2);
  });

  it('keeps the error of a failed run, including one thrown synchronously', async () => {
    const runs = createRunController();
    runs.start(() => {
      throw new RangeError('bad');
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(runs.state()).toEqual({
      busy: false,
      report: null,
      error: { name: 'RangeError', message: 'bad' },
    });
  });

  it('aborts the run in flight on dispose and reports nothing after', async () => {
    const runs = createRunController();
    const seen: RunOutcome[] = [];
    runs.subscribe((s) => seen.push(s));
    let signal: AbortSignal | null = null;
    const d = deferred<RunReport>();
    runs.start((s) => {
      signal = s;
      return d.promise;
    });
    runs.dispose();
    expect((signal as AbortSignal | null)?.aborted).toBe(true);
    d.reject(new Error('aborted'));
    await new Promise((r) => setTimeout(r, 0));
    expect(seen).toHaveLength(1); // only the start: the page is gone
  });
});
