import { describe, expect, it } from 'vitest';
import { ElasticEpochs } from './epochs.ts';
import type { StepDoneLog } from './epochs.ts';
import type { StepDoneMsg } from './intake.ts';

// The coordinator's step bookkeeping across epochs: which step the survivors redo, which reports
// of the aborted epoch are dropped, and when a step counts.

const done = (runId: number, step: number): StepDoneMsg => ({
  type: 'stepDone',
  runId,
  step,
  samples: 8,
  computeMs: 1,
  commMs: 1,
  bytesSent: 0,
});

/** stepDone log: step -> ranks that reported it. */
function log(entries: Record<number, number[]>): StepDoneLog {
  const m: StepDoneLog = new Map();
  for (const [step, ranks] of Object.entries(entries))
    m.set(Number(step), new Map(ranks.map((r) => [r, done(1, Number(step))])));
  return m;
}

describe('elastic epochs (coordinator)', () => {
  const ids = ['a', 'b', 'c', 'd'];

  it('pipelines: a spare takes a lost stage’s place in stage order and the epoch redoes from the snapshot', () => {
    // Stages a, b, c; d is a spare (not a member until it takes a stage).
    const e = new ElasticEpochs(1, ids, 1, 3);
    expect(e.members()).toEqual(['a', 'b', 'c']);
    expect(e.isMember('d')).toBe(false);
    const d = log({ 3: [0, 1, 2], 4: [0, 1, 2], 5: [0, 2] });
    const msg = e.replace('b', 'd', 'left during the run', 4, d, 2)!;
    expect(msg).toEqual({ type: 'epoch', runId: 1, epoch: 2, peers: ['a', 'd', 'c'], fromStep: 4 });
    expect([...d.keys()]).toEqual([3]);
    // The spare reports as rank 3; the step counts once every stage of the epoch reported it.
    d.set(4, new Map([0, 2, 3].map((r) => [r, done(1, 4)])));
    expect(e.stepDone(4, d)).toBe(true);
    // No second replacement by a member or of a non-member.
    expect(e.replace('b', 'a', 'x', 4, d, 3)).toBeNull();
    expect(e.replace('a', 'c', 'x', 4, d, 3)).toBeNull();
  });

  it('redoes the first step not every survivor reported and drops the old epoch’s later reports', () => {
    const e = new ElasticEpochs(1, ids, 1);
    // Waiting for step 5: a and d finished it, b did not; a also finished 6.
    const d = log({ 4: [0, 1, 2, 3], 5: [0, 3], 6: [0] });
    const msg = e.lose('c', 'left during the run', 5, d, 2)!;
    expect(msg).toEqual({ type: 'epoch', runId: 1, epoch: 2, peers: ['a', 'b', 'd'], fromStep: 5 });
    expect([...d.keys()]).toEqual([4]);
    expect(e.changes).toEqual([{ step: 5, epoch: 2, cause: 'left during the run', peerId: 'c' }]);
    // Reports count again only after the member's ack of this epoch.
    expect(e.counts('a')).toBe(false);
    e.ack('a', 1);
    expect(e.counts('a')).toBe(false);
    e.ack('a', 2);
    expect(e.counts('a')).toBe(true);
    expect(e.counts('c')).toBe(false);
    // The step counts once the three members reported it.
    const after = log({ 5: [0, 1] });
    expect(e.stepDone(5, after)).toBe(false);
    after.get(5)!.set(3, done(1, 5));
    expect(e.stepDone(5, after)).toBe(true);
  });

  it('keeps a step every survivor finished (the lost member’s share was in its all-reduce)', () => {
    const e = new ElasticEpochs(1, ids, 1);
    const d = log({ 5: [0, 1, 3], 6: [1] });
    expect(e.lose('c', 'gone', 5, d, 2)!.fromStep).toBe(6);
    expect([...d.keys()]).toEqual([5]);
  });

  it('ignores a member already out and a peer never in', () => {
    const e = new ElasticEpochs(1, ids, 1);
    expect(e.lose('b', 'gone', 0, log({}), 2)).not.toBeNull();
    expect(e.lose('b', 'gone again', 0, log({}), 3)).toBeNull();
    expect(e.lose('x', 'stranger', 0, log({}), 3)).toBeNull();
    expect(e.members()).toEqual(['a', 'c', 'd']);
  });

  it('admits a joiner at a step boundary: the next rank, the boundary redone, the members ahead rolled back', () => {
    const e = new ElasticEpochs(1, ['a', 'b'], 1);
    // Step 20 is the boundary; a already ran 20 (the barrier window let it).
    const d = log({ 19: [0, 1], 20: [0] });
    expect(() => e.join('j', 3, 20, d, 2)).toThrow(RangeError);
    const msg = e.join('j', 2, 20, d, 2);
    expect(msg).toEqual({
      type: 'epoch',
      runId: 1,
      epoch: 2,
      peers: ['a', 'b', 'j'],
      fromStep: 20,
      joiners: ['j'],
    });
    expect([...d.keys()]).toEqual([19]);
    expect(e.changes).toEqual([{ step: 20, epoch: 2, cause: 'joined', peerId: 'j' }]);
    expect(e.counts('j')).toBe(false);
    e.ack('j', 2);
    expect(e.counts('j')).toBe(true);
    // The joiner counts at the barrier, and may be lost like any member.
    d.set(20, log({ 20: [0, 1] }).get(20)!);
    expect(e.stepDone(20, d)).toBe(false);
    expect(e.lose('j', 'left during the run', 20, d, 3)?.peers).toEqual(['a', 'b']);
  });
});
