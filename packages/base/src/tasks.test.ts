import { afterEach, describe, expect, it, vi } from 'vitest';
import { macrotask, yieldToEventLoop } from './tasks.ts';

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

/** Resolves once every job posted so far on the page's channel (or Node's queue) has run. */
function drain(): Promise<void> {
  return new Promise((resolve) => void macrotask(resolve));
}

describe('macrotask', () => {
  it('runs after the microtasks already queued, and not once cancelled', async () => {
    const order: string[] = [];
    macrotask(() => order.push('task'));
    const cancel = macrotask(() => order.push('cancelled'));
    void Promise.resolve().then(() => order.push('microtask'));
    cancel();
    await drain();
    expect(order).toEqual(['microtask', 'task']);
  });

  it("in a browser (no setImmediate): one channel for the page's life, jobs in order, cancels kept", async () => {
    vi.stubGlobal('setImmediate', undefined);
    let made = 0;
    const Real = MessageChannel;
    vi.stubGlobal(
      'MessageChannel',
      class extends Real {
        constructor() {
          super();
          made++;
        }
      },
    );
    const order: number[] = [];
    await drain(); // the channel exists from here on
    const before = made;
    for (let i = 0; i < 5; i++) {
      const cancel = macrotask(() => order.push(i));
      if (i === 2) cancel();
    }
    await drain();
    await yieldToEventLoop();
    expect(order).toEqual([0, 1, 3, 4]);
    expect(made - before).toBe(0);
    expect(before).toBeLessThanOrEqual(1);
  });

  it('falls back to a timer where there is neither setImmediate nor MessageChannel', async () => {
    vi.stubGlobal('setImmediate', undefined);
    vi.stubGlobal('MessageChannel', undefined);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const ran: string[] = [];
    macrotask(() => ran.push('a'));
    macrotask(() => ran.push('b'))();
    expect(ran).toEqual([]);
    await vi.runAllTimersAsync();
    expect(ran).toEqual(['a']);
  });
});
