import { describe, expect, it } from 'vitest';
import { frameThrottledStore, type FrameScheduler, type Source } from './frameStore.ts';

function manualFrames(): FrameScheduler & {
  run(): void;
  pending(): number;
  advance(ms: number): void;
  timers(): number;
} {
  const queue = new Map<number, () => void>();
  const timers = new Map<number, { at: number; cb: () => void }>();
  let next = 1;
  let clock = 0;
  return {
    request: (cb) => {
      queue.set(next, cb);
      return next++;
    },
    cancel: (h) => void queue.delete(h),
    after: (cb, ms) => {
      timers.set(next, { at: clock + ms, cb });
      return next++;
    },
    cancelAfter: (h) => void timers.delete(h),
    now: () => clock,
    run() {
      const cbs = [...queue.values()];
      queue.clear();
      for (const cb of cbs) cb();
    },
    pending: () => queue.size,
    advance(ms) {
      clock += ms;
      for (const [h, t] of [...timers]) {
        if (t.at <= clock) {
          timers.delete(h);
          t.cb();
        }
      }
    },
    timers: () => timers.size,
  };
}

function counterSource(): Source<{ n: number }> & { bump(): void; listeners: number } {
  let value = { n: 0 };
  const ls = new Set<(v: { n: number }) => void>();
  return {
    get: () => value,
    subscribe(l) {
      ls.add(l);
      return () => ls.delete(l);
    },
    bump() {
      value = { n: value.n + 1 };
      for (const l of ls) l(value);
    },
    get listeners() {
      return ls.size;
    },
  };
}

describe('frameThrottledStore', () => {
  it('renders at most once per frame, with the latest value', () => {
    const frames = manualFrames();
    const src = counterSource();
    const store = frameThrottledStore(src, frames);
    let renders = 0;
    const unsub = store.subscribe(() => renders++);
    frames.run(); // initial catch-up frame: nothing changed
    expect(renders).toBe(0);
    for (let i = 0; i < 100; i++) src.bump();
    expect(frames.pending()).toBe(1);
    expect(store.getSnapshot().n).toBe(0);
    frames.run();
    expect(renders).toBe(1);
    expect(store.getSnapshot().n).toBe(100);
    unsub();
  });

  it('catches a change made between getSnapshot and subscribe', () => {
    const frames = manualFrames();
    const src = counterSource();
    const store = frameThrottledStore(src, frames);
    src.bump();
    let renders = 0;
    store.subscribe(() => renders++);
    frames.run();
    expect(renders).toBe(1);
    expect(store.getSnapshot().n).toBe(1);
  });

  it('unsubscribe removes the listener and cancels the pending frame', () => {
    const frames = manualFrames();
    const src = counterSource();
    const store = frameThrottledStore(src, frames);
    const unsub = store.subscribe(() => undefined);
    frames.run();
    src.bump();
    expect(frames.pending()).toBe(1);
    unsub();
    expect(frames.pending()).toBe(0);
    expect(src.listeners).toBe(0);
  });

  it('renders at most once per everyMs: a change soon after a render waits for its turn', () => {
    const frames = manualFrames();
    const src = counterSource();
    const store = frameThrottledStore(src, frames, 100);
    let renders = 0;
    const unsub = store.subscribe(() => renders++);
    frames.run();
    src.bump();
    frames.run();
    expect(renders).toBe(1); // the first change renders at the next frame
    src.bump();
    src.bump();
    expect(frames.pending()).toBe(0); // too soon: a timer, not a frame
    expect(frames.timers()).toBe(1);
    frames.advance(99);
    expect(frames.pending()).toBe(0);
    frames.advance(1);
    expect(frames.pending()).toBe(1);
    frames.run();
    expect(renders).toBe(2);
    expect(store.getSnapshot().n).toBe(3);
    src.bump();
    unsub(); // cancels the waiting timer too
    expect(frames.timers()).toBe(0);
    expect(frames.pending()).toBe(0);
  });
});

describe('frameThrottledStore: urgent changes', () => {
  it('draws an urgent change at the next frame, not after everyMs', () => {
    const frames = manualFrames();
    const src = counterSource();
    // Every tenth value is urgent (a run's phase changing, say).
    const store = frameThrottledStore(src, frames, 1000, (next) => next.n % 10 === 0);
    let renders = 0;
    store.subscribe(() => renders++);
    frames.run();
    src.bump(); // n = 1: drawn at once (the first since subscribing), then 1000 ms to the next
    frames.run();
    expect(renders).toBe(1);
    for (let i = 0; i < 8; i++) src.bump(); // n = 9: waits for its turn
    frames.run();
    expect(renders).toBe(1);
    expect(frames.timers()).toBe(1);
    src.bump(); // n = 10: urgent, drawn at the next frame; the timer goes
    expect(frames.timers()).toBe(0);
    frames.run();
    expect(renders).toBe(2);
    expect(store.getSnapshot().n).toBe(10);
    frames.advance(1000);
    frames.run();
    expect(renders).toBe(2); // nothing left to draw
  });
});
