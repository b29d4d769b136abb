import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { devtoolsPortArgs, hiddenTabLaunch, hiddenWatch } from './hidden-tab.ts';
import type { HiddenRecord } from './hidden-tab.ts';

/** The three things hiddenWatch reads from a page: closed?, visibilityState, the rank it shows. */
function fakePage(visibility: string, rank: string | null): Page {
  const page = {
    isClosed: () => false,
    evaluate: () => Promise.resolve(visibility),
    getByTestId: () => ({ textContent: () => Promise.resolve(rank) }),
  };
  return page as unknown as Page;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('hiddenWatch', () => {
  it('records each hidden tab once, the first time the steps done reach the check step', async () => {
    const records: HiddenRecord[] = [];
    const pages = [fakePage('hidden', '2 / 3'), fakePage('visible', null)];
    const onProgress = hiddenWatch(
      pages,
      10,
      (r) => records.push(r),
      () => 0,
    );
    onProgress(9);
    await settle();
    expect(records).toEqual([]);
    onProgress(12);
    onProgress(13);
    await settle();
    expect(records.map((r) => [r.kind, r.rank, r.step, r.atStep, r.outcome])).toEqual([
      ['hide', 2, 10, 12, "hidden for the whole run (visibilityState 'hidden' at step 12)"],
      ['hide', NaN, 10, 12, "hidden for the whole run (visibilityState 'visible' at step 12)"],
    ]);
  });

  it('does nothing without hidden tabs', async () => {
    const records: HiddenRecord[] = [];
    hiddenWatch([], 1, (r) => records.push(r))(5);
    await settle();
    expect(records).toEqual([]);
  });
});

describe('hiddenTabLaunch', () => {
  it('asks for nothing without hidden tabs; else a free DevTools port on 127.0.0.1 and throttling kept', async () => {
    expect(await hiddenTabLaunch(0)).toBeNull();
    const launch = (await hiddenTabLaunch(1))!;
    expect(launch.port).toBeGreaterThan(0);
    expect(launch.args).toEqual(devtoolsPortArgs(launch.port));
    expect(launch.args).toContain('--remote-debugging-address=127.0.0.1');
    expect(launch.backgroundThrottling).toBe(true);
  });
});
