import { describe, expect, it } from 'vitest';
import { useTrainCli } from './train-cli.fixture.ts';

// A worker tab frozen for 15 s (CDP Page.setWebLifecycleState frozen, the way Chrome freezes a
// background tab, and its scripts paused: harness chaos.ts) in an elastic run: its links stay open but it says nothing, so the coordinator
// drops it after the heartbeat timeout (8 s here), the survivors redo the step without it, and
// when the tab thaws it is told it was dropped, says hello again and is readmitted at the next
// step boundary. The run keeps the global batch throughout, so it still equals the reference.

const { train } = useTrainCli();

describe('a frozen worker tab', () => {
  // 100 steps of batch 1024: the run must outlast the freeze and the readmission. In the headless
  // shell 60 steps of 512 ended first; with cheaper steps (reused buffers, fewer redraws) so did 100
  // of 512 in two full test runs under load (alone the tab came back at step 36-44). More steps
  // would not do: at 200 the fp32 drift from the reference reached 1e-3.
  it('--chaos freeze=1:15s --elastic: dropped after the heartbeat timeout, readmitted when it thaws; all 100 steps, equal to the reference', async () => {
    const hit = await train([
      ...'--workers 4 --model mlp --dataset mnist --steps 100 --backend wasm --elastic --seed 7'.split(' '),
      // steps=3-6: the freeze lands early, so the thaw (15 s later) comes while the run still
      // trains; a large batch makes a step long enough that the survivors do not finish first.
      // Heartbeat 8 s, not 5: in a full `npm test` on a slower machine (19.8 min) a live tab beside
      // the frozen one went 5.0 s without a word, twice, and was dropped too; the frozen tab is
      // silent for 15 s, so 8 s still drops it and readmits it before the run ends.
      ...['--batch', '1024', '--eval-every', '0', '--reference', '--heartbeat-timeout', '8', '--verbose'],
      ...['--chaos', 'freeze=1:15s,seed=3,steps=3-6'],
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    const chaos = r.harness.chaos!;
    expect(chaos.actions).toHaveLength(1);
    expect(chaos.actions[0]!.outcome).toBe('tab frozen');
    const frozen = r.workers[chaos.actions[0]!.rank]!.peerId;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(100).keys()]);
    const changes = r.membershipChanges ?? [];
    console.log(`membership changes: ${JSON.stringify(changes)}; wall ${r.wallMs} ms`);
    // The session's log (joins, drops, chaos), without the progress lines, says why on a failure.
    const log = hit.stderr
      .split('\n')
      .filter((l) => !/^step +\d/.test(l))
      .join('\n');
    expect(
      changes.map(({ cause, peerId }) => ({ cause, peerId })),
      log,
    ).toEqual([
      { cause: 'heartbeat', peerId: frozen },
      { cause: 'joined', peerId: frozen },
    ]);
    expect(changes[1]!.step).toBeGreaterThanOrEqual(changes[0]!.step);
    // Within the fp32 floor of 100 steps of this configuration. Measured on this seed: an
    // undisturbed 3-worker run ends 5.9e-5 from its reference whatever the all-reduce; 4 workers
    // 1.6-1.8e-6. This run with rank-order sums (pairwise, direct) ended 1.2e-4 away in 6 of 7
    // runs (1.5e-6 in the other): one substitute gradient at step 62 moves 1.5e-3 from a 1e-5
    // difference in the parameters (most likely a unit crossing zero), and the distance grows from
    // there as the floor does.
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(2e-4);
  });
});
