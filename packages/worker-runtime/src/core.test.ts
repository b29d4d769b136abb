import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import { newRunState, poke, waitForWork } from './core.ts';
import type { Assign } from './methods/index.ts';

// The run loop's sleep and its wake-up: a poke is never lost, whether the loop sleeps or steps.

const assign: Assign = {
  type: 'assign',
  runId: 1,
  rank: 0,
  peers: ['w0'],
  role: { kind: 'worker' },
  shard: { start: 0, count: 10 },
  allShards: [{ start: 0, count: 10 }],
  config: parseRunConfig({ workers: 1, steps: 3, dataset: 'synthetic' }),
};

/** Whether `p` settles within a macrotask. */
const settles = (p: Promise<void>): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 0))]);

describe('the run loop’s sleep', () => {
  it('sleeps until poked', async () => {
    const run = newRunState(assign);
    const sleeping = waitForWork(run, new AbortController().signal);
    expect(await settles(sleeping)).toBe(false);
    poke(run);
    expect(await settles(sleeping)).toBe(true);
  });

  it('a poke while the loop was stepping makes its next sleep return at once, once', async () => {
    const run = newRunState(assign);
    poke(run); // e.g. an epoch that came during a step
    expect(await settles(waitForWork(run, new AbortController().signal))).toBe(true);
    expect(await settles(waitForWork(run, new AbortController().signal))).toBe(false);
  });

  it('an abort ends the sleep with its reason', async () => {
    const run = newRunState(assign);
    const ac = new AbortController();
    const sleeping = waitForWork(run, ac.signal);
    ac.abort(new Error('stopped'));
    await expect(sleeping).rejects.toThrow('stopped');
  });
});
