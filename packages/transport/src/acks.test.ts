import { afterEach, describe, expect, it, vi } from 'vitest';
import { AckCounter, AckWindow } from './acks.ts';

describe('AckWindow', () => {
  it('lets sends go until the window is out, then waits for an acknowledgement', async () => {
    const w = new AckWindow(100);
    w.sent(60);
    await w.wait(undefined); // 60 of 100 out: room
    w.sent(60);
    expect(w.full).toBe(true);
    let through = false;
    const waiting = w.wait(undefined).then(() => (through = true));
    await Promise.resolve();
    expect(through).toBe(false);
    expect(w.acked(10)).toBe(true); // 110 out: still full
    await Promise.resolve();
    expect(through).toBe(false);
    expect(w.acked(30)).toBe(true); // 80 out
    await waiting;
    expect(w.inFlight).toBe(80);
  });

  it('refuses an acknowledgement of more than is out, or of nothing', () => {
    const w = new AckWindow(100);
    w.sent(50);
    expect(w.acked(51)).toBe(false);
    expect(w.acked(0)).toBe(false);
    expect(w.acked(Number.NaN)).toBe(false);
    expect(w.inFlight).toBe(50);
  });

  it('fails its waiters when the link closes, and a waiter can be cancelled', async () => {
    const w = new AckWindow(10);
    w.sent(10);
    const closed = w.wait(undefined);
    w.fail(new Error('link closed'));
    await expect(closed).rejects.toThrow('link closed');
    const ac = new AbortController();
    const cancelled = w.wait(ac.signal);
    ac.abort(new Error('stopped'));
    await expect(cancelled).rejects.toThrow('stopped');
  });

  it('window 0 is off: never full', async () => {
    const w = new AckWindow(0);
    w.sent(10 ** 9);
    expect(w.full).toBe(false);
    await w.wait(undefined);
  });
});

describe('AckCounter', () => {
  afterEach(() => void vi.useRealTimers());

  it('acknowledges every `every` bytes at once, and fewer after the delay', () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    const c = new AckCounter(100, 2, (n) => (sent.push(n), true));
    c.received(60);
    expect(sent).toEqual([]);
    c.received(50);
    expect(sent).toEqual([110]);
    c.received(7);
    vi.advanceTimersByTime(2);
    expect(sent).toEqual([110, 7]);
    vi.advanceTimersByTime(10);
    expect(sent).toEqual([110, 7]);
  });

  it('keeps the count while its channel cannot send, and sends it once it can', () => {
    vi.useFakeTimers();
    let open = false;
    const sent: number[] = [];
    const c = new AckCounter(100, 2, (n) => open && (sent.push(n), true));
    c.received(150);
    vi.advanceTimersByTime(4);
    c.received(5);
    open = true;
    vi.advanceTimersByTime(2);
    expect(sent).toEqual([155]);
    c.stop();
  });
});
