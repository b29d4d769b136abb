import { describe, expect, it } from 'vitest';
import { useTrainCli } from './train-cli.fixture.ts';

// A worker tab in the background for the whole run (`--chaos hide=1`: harness hidden-tab.ts opens
// it with its window minimized and Chrome's background throttling on, so document.visibilityState
// is 'hidden', chained timers wake at most once a second and animation frames stop). Training does
// not wait on timers or frames (prefetch and layer yields are MessageChannel tasks, the data
// channels' messages are not throttled), so the run finishes every step and equals the reference.
// Speed is measured apart (README, "Tabs in the background"), not asserted here.

const { train } = useTrainCli();

describe('a hidden worker tab', () => {
  it('--chaos hide=1: the tab reports visibilityState hidden mid-run; all 30 steps, equal to the reference', async () => {
    const hit = await train([
      ...'--workers 3 --model mlp --dataset mnist --steps 30 --backend wasm --seed 7'.split(' '),
      ...['--eval-every', '0', '--reference', '--chaos', 'hide=1'],
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    const hidden = r.harness.chaos!.actions.filter((a) => a.kind === 'hide');
    expect(hidden).toHaveLength(1);
    // Read from the page (document.visibilityState) once 15 of the 30 steps were done.
    expect(hidden[0]!.outcome).toContain("visibilityState 'hidden'");
    expect(hidden[0]!.atStep).toBeGreaterThanOrEqual(15);
    expect(hidden[0]!.atStep).toBeLessThan(30);
    expect(r.loss.map((l) => l.step)).toEqual([...Array(30).keys()]);
    console.log(`hidden run: ${r.samplesPerSec.toFixed(0)} samples/s, step median ${r.stepMsMedian} ms`);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
  });
});
