import { describe, expect, it, vi } from 'vitest';
import { AbortError } from '@peertrain/base';
import { Prefetcher } from './prefetch.ts';
import type { Scheduler } from './prefetch.ts';

/** A scheduler the test runs by hand. */
function manualScheduler(): { schedule: Scheduler; runAll: () => void; pending: () => number } {
  const queue = new Set<() => void>();
  return {
    schedule: (fn) => {
      queue.add(fn);
      return () => queue.delete(fn);
    },
    runAll: () => {
      for (const fn of [...queue]) {
        queue.delete(fn);
        fn();
      }
    },
    pending: () => queue.size,
  };
}

const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('Prefetcher', () => {
  it('hands out steps in order and builds the next ones ahead, as scheduled tasks', async () => {
    const built: number[] = [];
    const s = manualScheduler();
    const p = new Prefetcher((step) => (built.push(step), `batch ${step}`), {
      firstStep: 3,
      depth: 2,
      schedule: s.schedule,
    });
    expect(await p.next()).toBe('batch 3');
    expect(built).toEqual([3]); // the ahead steps wait for the scheduler (the step's idle time)
    expect(s.pending()).toBe(2);
    s.runAll();
    await flush();
    expect(built).toEqual([3, 4, 5]);
    expect(await p.next()).toBe('batch 4');
    expect(await p.next()).toBe('batch 5');
    expect(p.step).toBe(6);
    p.close();
  });

  it('by default builds ahead without timers (a hidden tab runs them at most once a second)', async () => {
    // setTimeout never fires by itself: only a macrotask of base's (setImmediate here in Node, a
    // message in a browser, where there is no setImmediate) can build step 1.
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      const built: number[] = [];
      const p = new Prefetcher((step) => (built.push(step), step), { depth: 1 });
      expect(await p.next()).toBe(0);
      for (let i = 0; i < 5 && built.length < 2; i++)
        await new Promise<void>((resolve) => {
          const { port1, port2 } = new MessageChannel();
          port1.onmessage = () => (port1.close(), resolve());
          port2.postMessage(null);
        });
      expect(built).toEqual([0, 1]);
      p.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops at lastStep', async () => {
    const p = new Prefetcher((step) => step, { lastStep: 1, depth: 3 });
    expect([await p.next(), await p.next()]).toEqual([0, 1]);
    await expect(p.next()).rejects.toThrow(AbortError);
    p.close();
  });

  it('close() cancels scheduled work and disposes items built but never handed out', async () => {
    const disposed: number[] = [];
    const built: number[] = [];
    const s = manualScheduler();
    const p = new Prefetcher((step) => (built.push(step), step), {
      depth: 3,
      schedule: s.schedule,
      dispose: (item) => disposed.push(item),
    });
    await p.next(); // step 0 handed out; 1..3 scheduled
    s.runAll(); // 1..3 built
    await flush();
    const s2 = built.length;
    p.close();
    await flush();
    expect(s2).toBe(4);
    expect(disposed.sort()).toEqual([1, 2, 3]);
    expect(s.pending()).toBe(0);
    await expect(p.next()).rejects.toThrow(AbortError);
  });

  it('close() before the scheduled work runs builds nothing more', async () => {
    const built: number[] = [];
    const s = manualScheduler();
    const p = new Prefetcher((step) => built.push(step), { depth: 2, schedule: s.schedule });
    await p.next();
    p.close();
    s.runAll();
    await flush();
    expect(built).toEqual([0]);
  });

  it('an aborted next() disposes its item when it arrives and rejects', async () => {
    const disposed: string[] = [];
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const p = new Prefetcher(async (step) => (await gate, `b${step}`), {
      depth: 0,
      dispose: (i) => disposed.push(i),
    });
    const ctrl = new AbortController();
    const pending = p.next({ signal: ctrl.signal });
    ctrl.abort();
    await expect(pending).rejects.toThrow();
    release();
    await flush();
    expect(disposed).toEqual(['b0']);
    p.close();
  });

  it('a failing producer rejects that next() and the prefetcher goes on', async () => {
    const p = new Prefetcher(
      (step) => {
        if (step === 0) throw new Error('boom');
        return step;
      },
      { depth: 1 },
    );
    await expect(p.next()).rejects.toThrow('boom');
    expect(await p.next()).toBe(1);
    p.close();
  });
});
