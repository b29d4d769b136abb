import { describe, expect, it, vi } from 'vitest';
import { AbortError, abortReason, abortable, asError, deadline, sleep, throwIfAborted } from './abort.ts';

describe('asError / abortReason / throwIfAborted', () => {
  it('keeps an Error and wraps anything else in an AbortError', () => {
    const err = new RangeError('x');
    expect(asError(err)).toBe(err);
    expect(asError('stopped')).toEqual(new AbortError('stopped'));
    expect(asError(undefined).message).toBe('aborted');
    expect(asError(42)).toBeInstanceOf(AbortError);
  });

  it('reads the signal reason', () => {
    const ac = new AbortController();
    expect(() => throwIfAborted(ac.signal)).not.toThrow();
    expect(() => throwIfAborted(undefined)).not.toThrow();
    ac.abort('user');
    expect(abortReason(ac.signal)).toEqual(new AbortError('user'));
    expect(() => throwIfAborted(ac.signal)).toThrow(AbortError);
    // AbortController.abort() with no reason gives a DOMException, which is an Error: kept as is.
    const plain = new AbortController();
    plain.abort();
    expect(abortReason(plain.signal).name).toBe('AbortError');
  });
});

describe('sleep', () => {
  it('resolves after the delay and rejects at once on abort, clearing its timer', async () => {
    vi.useFakeTimers();
    try {
      const done = vi.fn();
      void sleep(100).then(done);
      await vi.advanceTimersByTimeAsync(99);
      expect(done).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(done).toHaveBeenCalled();

      const ac = new AbortController();
      const p = sleep(1_000, ac.signal);
      ac.abort(new RangeError('stop'));
      await expect(p).rejects.toThrow(RangeError);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects an already aborted signal without a timer', async () => {
    await expect(sleep(10, AbortSignal.abort('gone'))).rejects.toThrow('gone');
  });
});

describe('abortable', () => {
  it('settles like the promise when not aborted', async () => {
    const ac = new AbortController();
    await expect(abortable(Promise.resolve(3), ac.signal)).resolves.toBe(3);
    await expect(abortable(Promise.reject(new Error('no')), ac.signal)).rejects.toThrow('no');
    await expect(abortable(Promise.resolve(4), undefined)).resolves.toBe(4);
  });

  it('rejects with the reason on abort and calls onAbort once', async () => {
    const ac = new AbortController();
    const onAbort = vi.fn();
    const p = abortable(new Promise<never>(() => undefined), ac.signal, onAbort);
    ac.abort('cancelled');
    await expect(p).rejects.toEqual(new AbortError('cancelled'));
    expect(onAbort).toHaveBeenCalledTimes(1);
    const already = vi.fn();
    await expect(abortable(Promise.resolve(1), ac.signal, already)).rejects.toThrow('cancelled');
    expect(already).toHaveBeenCalledTimes(1);
  });
});

describe('deadline', () => {
  it('aborts with a TimeoutError after ms, or with the signal first', async () => {
    const late = deadline(new AbortController().signal, 20);
    await new Promise((r) => late.addEventListener('abort', r, { once: true }));
    expect((late.reason as Error).name).toBe('TimeoutError');
    const ac = new AbortController();
    const early = deadline(ac.signal, 60_000);
    ac.abort(new AbortError('stop'));
    expect(early.aborted).toBe(true);
    expect(abortReason(early).message).toBe('stop');
    expect(deadline(undefined, 10).aborted).toBe(false);
  });

  it('keeps its timeout alive while the deadline is in use (the Node collection bug)', async () => {
    const d = deadline(new AbortController().signal, 30);
    // Garbage pressure while only the combined signal is held.
    for (let i = 0; i < 20; i++) void new Array(200_000).fill(i);
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => d.addEventListener('abort', r, { once: true }));
    expect(d.aborted).toBe(true);
  });
});
