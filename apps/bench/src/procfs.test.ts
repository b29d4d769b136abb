import { describe, expect, it } from 'vitest';
import { cpuMsBetween, descendants, parsePidStat, roleOf, totalMs } from './procfs.ts';
import type { CpuSnapshot } from './procfs.ts';

describe('parsePidStat', () => {
  it('reads pid, ppid and utime + stime after the last parenthesis', () => {
    const text = '4242 (Chrome_Child (x)) S 4200 4200 15 0 -1 4194304 99 0 0 0 150 30 0 0 20 0 1 0\n';
    expect(parsePidStat(text)).toEqual({ pid: 4242, ppid: 4200, ticks: 180 });
  });

  it('refuses text that is not a stat line', () => {
    expect(parsePidStat('garbage')).toBeNull();
    expect(parsePidStat('1 (x) S a b')).toBeNull();
  });
});

describe('roleOf', () => {
  it('maps Chromium --type switches to roles', () => {
    expect(roleOf('/usr/lib/chromium/chromium\0--headless=new\0')).toBe('browser');
    expect(roleOf('chromium\0--type=renderer\0--lang=en')).toBe('renderer');
    expect(roleOf('chromium\0--type=gpu-process\0')).toBe('gpu');
    expect(roleOf('chromium\0--type=utility\0--utility-sub-type=network.mojom.NetworkService\0')).toBe(
      'network',
    );
    expect(roleOf('chromium\0--type=utility\0--utility-sub-type=storage.mojom.StorageService\0')).toBe(
      'other',
    );
    expect(roleOf('chromium\0--type=zygote\0')).toBe('other');
    // Children rewrite their title (setproctitle): one space-separated string.
    expect(roleOf('/usr/lib/chromium/chromium --type=renderer --lang=en-US --num-raster-threads=1')).toBe(
      'renderer',
    );
  });
});

describe('descendants', () => {
  it('walks the tree under the root only', () => {
    const stats = [
      { pid: 10, ppid: 1, ticks: 0 },
      { pid: 11, ppid: 10, ticks: 0 },
      { pid: 12, ppid: 11, ticks: 0 },
      { pid: 13, ppid: 1, ticks: 0 },
    ];
    expect([...descendants(stats, 10)].sort()).toEqual([10, 11, 12]);
  });
});

describe('cpuMsBetween', () => {
  it('sums tick differences by role; a new process counts whole', () => {
    const a: CpuSnapshot = new Map([
      [1, { role: 'browser', ticks: 100 }],
      [2, { role: 'renderer', ticks: 50 }],
    ]);
    const b: CpuSnapshot = new Map([
      [1, { role: 'browser', ticks: 110 }],
      [2, { role: 'renderer', ticks: 80 }],
      [3, { role: 'renderer', ticks: 5 }],
    ]);
    const ms = cpuMsBetween(a, b, 100);
    expect(ms).toEqual({ browser: 100, renderer: 350, network: 0, gpu: 0, other: 0 });
    expect(totalMs(ms)).toBe(450);
  });
});
