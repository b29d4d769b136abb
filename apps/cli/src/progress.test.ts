import { describe, expect, it } from 'vitest';
import { EtaEstimator, createProgress, formatBar, formatDuration, formatStatus } from './progress.ts';
import type { ProgressSink } from './progress.ts';

function sink(isTTY: boolean, columns = 100): ProgressSink & { out: string } {
  const s = {
    out: '',
    isTTY,
    columns,
    write(text: string) {
      s.out += text;
    },
  };
  return s;
}

const progress = (step: number, totalSteps = 10) =>
  ({ type: 'progress', step, totalSteps, loss: 1 / step, samplesPerSec: 1234.4 }) as const;

describe('formatting', () => {
  it('formats durations', () => {
    expect(formatDuration(null)).toBe('--:--');
    expect(formatDuration(NaN)).toBe('--:--');
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(65_400)).toBe('1:05');
    expect(formatDuration(3600_000 * 12 + 7000)).toBe('12:00:07');
  });

  it('draws bars within bounds', () => {
    expect(formatBar(0, 10, 10)).toBe('[----------]');
    expect(formatBar(5, 10, 10)).toBe('[#####-----]');
    expect(formatBar(12, 10, 4)).toBe('[####]');
    expect(formatBar(1, 0, 4)).toBe('[----]');
  });

  it('formats the status with aligned steps', () => {
    expect(
      formatStatus({ step: 7, totalSteps: 300, loss: 0.41234, samplesPerSec: 999.6, etaMs: 42_000 }),
    ).toBe('step   7/300 loss 0.4123 1000 samples/s ETA 0:42');
    expect(formatStatus({ step: 1, totalSteps: 2, loss: NaN, samplesPerSec: 0, etaMs: null })).toBe(
      'step 1/2 loss NaN 0 samples/s ETA --:--',
    );
    const p = { step: 7, totalSteps: 300, loss: 0.5, samplesPerSec: 10, etaMs: null };
    expect(formatStatus({ ...p, computeUtilization: 0.456 })).toBe(
      'step   7/300 loss 0.5000 10 samples/s compute 46% ETA --:--',
    );
    expect(formatStatus({ ...p, computeUtilization: NaN })).toBe(
      'step   7/300 loss 0.5000 10 samples/s ETA --:--',
    );
  });

  it('estimates the ETA from the rate since the first point', () => {
    const eta = new EtaEstimator();
    expect(eta.update(10, 110, 1000)).toBeNull();
    expect(eta.update(10, 110, 2000)).toBeNull();
    expect(eta.update(20, 110, 2000)).toBe(9000); // 10 steps per second, 90 to go
  });
});

describe('createProgress', () => {
  it('prints throttled plain lines when not a TTY, always the last step', () => {
    let t = 0;
    const s = sink(false);
    const p = createProgress({ sink: s, now: () => t, plainEveryMs: 1000 });
    for (let step = 1; step <= 10; step++) {
      t = step * 300;
      p.event(progress(step));
    }
    p.event({ type: 'eval', step: 10, accuracy: 0.9123 });
    p.event({ type: 'log', message: 'hello' });
    p.stop();
    expect(s.out.split('\n')).toEqual([
      'step  1/10 loss 1.0000 1234 samples/s ETA --:--',
      'step  5/10 loss 0.2000 1234 samples/s ETA 0:02',
      'step  9/10 loss 0.1111 1234 samples/s ETA 0:00',
      'step 10/10 loss 0.1000 1234 samples/s ETA 0:00',
      'eval at step 10: test accuracy 91.23%',
      'hello',
      '',
    ]);
    expect(s.out).not.toContain('\r');
  });

  it('redraws one line on a TTY and keeps log lines above the bar', () => {
    let t = 0;
    const s = sink(true, 100);
    const p = createProgress({ sink: s, now: () => t });
    p.event(progress(1));
    t = 50;
    p.event(progress(2)); // within 100 ms: not redrawn
    t = 200;
    p.event(progress(3));
    p.line('a log line');
    p.stop();
    const frames = s.out.split('\r\x1b[2K').filter(Boolean);
    expect(frames).toEqual([
      expect.stringMatching(/^\[###-+\] step {2}1\/10 loss 1\.0000 1234 samples\/s ETA --:--$/),
      expect.stringMatching(/^\[#{9}-+\] step {2}3\/10 /),
      'a log line\n',
      expect.stringMatching(/^\[#{9}-+\] step {2}3\/10 .*\n$/),
    ]);
    expect(s.out).not.toContain('step  2/10');
  });

  it('says nothing when quiet', () => {
    const s = sink(true);
    const p = createProgress({ sink: s, quiet: true });
    p.event(progress(1));
    p.event({ type: 'log', message: 'x' });
    p.line('y');
    p.stop();
    expect(s.out).toBe('');
  });
});
