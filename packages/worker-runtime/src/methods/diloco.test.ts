import { describe, expect, it } from 'vitest';
import { buildModel, paramDiff } from '@peertrain/engine';
import { modelPreset } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { firstBitDifference, runCluster } from './testing.ts';
import type { ClusterResult } from './testing.ts';

// DiLoCo on real workers (engine, mesh over the in-memory transport, collectives) without the
// coordinator: the harness steps every worker's MethodRun and copies what each holds after a step.

const layout = buildModel(modelPreset('mlp')).params; // per-tensor (offset, size) of the flat array

const base: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  batch: 8,
  lr: 0.05,
  seed: 11,
  optimizer: { kind: 'sgd', momentum: 0.9 },
  bucketElems: 10_000,
};

/** Every worker holds the same bits after `step`. */
function expectIdenticalAt(run: ClusterResult, step: number): void {
  const [first, ...rest] = run.params[step]!;
  for (const [i, p] of rest.entries()) {
    const at = firstBitDifference(p, first!);
    if (at >= 0) expect.fail(`step ${step}: worker ${i + 1} differs from worker 0 at element ${at}`);
  }
}

/** Mean over workers of the loss of the last `k` steps. */
function tailLoss(run: ClusterResult, k: number): number {
  const tail = run.losses.slice(-k).flat() as number[];
  return tail.reduce((a, b) => a + b, 0) / tail.length;
}

describe('diloco', () => {
  it('with H = 1, outer lr 1, no outer momentum equals synchronous all-reduce after 3 steps', async () => {
    const n = 3;
    const sync = await runCluster({ ...base, workers: n, steps: 3, sync: 'allreduce' });
    const local = await runCluster({
      ...base,
      workers: n,
      steps: 3,
      sync: 'diloco',
      innerSteps: 1,
      outerLr: 1,
      outerMomentum: 0,
    });
    for (let s = 0; s < 3; s++) {
      expectIdenticalAt(local, s);
      // Per tensor max|a - b| / max|b|.
      const { maxRelDiff } = paramDiff(local.params[s]![0]!, sync.params[s]![0]!, layout);
      expect(maxRelDiff).toBeLessThanOrEqual(1e-6);
    }
    // The same batches: the same losses (the step's loss is computed before its update).
    expect(local.losses[0]).toEqual(sync.losses[0]);
  });

  it('exchanges only at round ends (and the last step), then every worker holds the same G', async () => {
    const run = await runCluster({ ...base, workers: 2, steps: 7, sync: 'diloco', innerSteps: 3 });
    const sent = run.bytesSent.map((perWorker) => perWorker[0]!);
    // Rounds end at steps 2 and 5 and the run's last step 6.
    expect(sent.map((b) => b > 0)).toEqual([false, false, true, false, false, true, true]);
    for (const s of [2, 5, 6]) expectIdenticalAt(run, s);
    // G (evalParams) only moves at round ends.
    expect(firstBitDifference(run.params[0]![0]!, run.params[1]![0]!)).toBe(-1);
    expect(firstBitDifference(run.params[2]![0]!, run.params[1]![0]!)).toBeGreaterThanOrEqual(0);
    // The exchange is an allreduce span with its phase (two workers: the direct exchange, one
    // all-gather), the outer step an optimizer span.
    const kinds = new Set(run.spans[0]!.filter((s) => s.step === 2).map((s) => s.kind));
    expect([...kinds].sort()).toEqual(['allGather', 'allreduce', 'compute', 'optimizer']);
  });

  it('overlapped: trains like the plain rounds and ends with every worker bit-identical', async () => {
    // Plain averaging as the outer step: with an SGD-momentum inner optimizer and short rounds,
    // DiLoCo's outer momentum 0.9 amplifies the step about tenfold and both variants diverge here.
    const cfg: RunConfigInput = {
      ...base,
      batch: 16,
      workers: 2,
      steps: 40,
      sync: 'diloco',
      innerSteps: 4,
      outerLr: 1,
      outerMomentum: 0,
    };
    const plain = await runCluster(cfg);
    const overlapped = await runCluster({ ...cfg, overlapOuter: true });
    expectIdenticalAt(overlapped, 39);
    const start = tailLoss({ ...overlapped, losses: overlapped.losses.slice(0, 4) }, 4);
    const end = tailLoss(overlapped, 8);
    expect(end).toBeLessThan(start * 0.5);
    // Similar to the plain rounds' loss at the end: one round late costs a little, not a lot.
    expect(end).toBeLessThan(tailLoss(plain, 8) * 1.5 + 0.1);
    // Each round's exchange is keyed by (and recorded under) the step that ended the round; the
    // last one is awaited at the run's last step.
    const ex = overlapped.spans[0]!.filter((s) => s.kind === 'allreduce').map((s) => s.step);
    expect(ex).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35, 39]);
  });

  it('overlapped: a round end does not wait for the exchange, and dispose aborts it', async () => {
    // Only worker 0 steps: its exchange of round 0 (ended at step 1) can never complete.
    const run = await runCluster(
      { ...base, workers: 2, steps: 12, sync: 'diloco', innerSteps: 2, overlapOuter: true },
      { stepping: (r) => r === 0, steps: 3 },
    );
    expect(run.losses.map((l) => l[0] !== null)).toEqual([true, true, true]);
    // Aborted by dispose: the exchange of step 1 had started (its phase's span, ended by the
    // abort), and never finished.
    const spans = run.spans[0]!.filter((s) => s.step === 1).map((s) => s.kind);
    expect(spans).toContain('allGather');
    expect(spans).not.toContain('allreduce');
    // The step's inner update, and no outer step (it would be a second 'optimizer' span).
    expect(spans.filter((k) => k === 'optimizer')).toHaveLength(1);
  });

  /** Two workers, overlapped DiLoCo with H = 4 and no outer momentum: what the fill tests vary. */
  const overlapped4 = {
    ...base,
    workers: 2,
    sync: 'diloco',
    innerSteps: 4,
    overlapOuter: true,
    outerMomentum: 0,
  } as const;

  it('fillWaits: a faster worker takes extra inner steps while it waits, and the run ends in step', async () => {
    const cfg = { ...overlapped4, steps: 24 } as const;
    // Worker 1 sleeps 60 ms before each step: worker 0 ends its rounds first and waits for it.
    // The margin is the test's premise: at 15 ms, a loaded machine gave worker 0 (which steps first
    // and pays the engine's warm-up) a slower start than worker 1's lead could make up in 24 steps,
    // so it never waited and filled nothing.
    const delayMs = (rank: number): number => (rank === 1 ? 60 : 0);
    const filled = await runCluster({ ...cfg, fillWaits: true }, { delayMs });
    const plain = await runCluster(cfg, { delayMs });
    const byWorker = (run: ClusterResult, w: number): number[] => run.extraSamples.map((e) => e[w]!);
    const fast = byWorker(filled, 0);
    // Only at round ends with an exchange in flight (steps 7, 11, ...), never the run's last step,
    // at most H steps of a batch each.
    fast.forEach((x, s) => {
      if (s % 4 !== 3 || s === 3 || s === 23) expect(x, `step ${s}`).toBe(0);
      expect(x).toBeLessThanOrEqual(4 * 8);
      expect(x % 8).toBe(0); // batch 8
    });
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    expect(sum(fast)).toBeGreaterThan(0);
    expect(sum(byWorker(filled, 1))).toBeLessThan(sum(fast));
    expect(sum(byWorker(plain, 0)) + sum(byWorker(plain, 1))).toBe(0);
    // The extra steps trained: every worker holds the same G at the end, and the loss went down.
    expectIdenticalAt(filled, 23);
    const start = tailLoss({ ...filled, losses: filled.losses.slice(0, 4) }, 4);
    expect(tailLoss(filled, 4)).toBeLessThan(start);
  });

  it('fillMax: a wait takes up to that many extra steps, beyond H', async () => {
    // Worker 1 sleeps 60 ms before each step: a round of it outlasts 12 of worker 0's steps. Six
    // rounds, not three: the first round end that can fill is step 7, and whoever steps first pays
    // the engine's warm-up, which on a loaded machine (a fresh clone's whole suite) outlasted
    // worker 1's lead there; the lead grows by a round's sleep at every round end.
    const cfg = { ...overlapped4, steps: 24, fillWaits: true, fillMax: 12 } as const;
    const run = await runCluster(cfg, { delayMs: (rank) => (rank === 1 ? 60 : 0) });
    const fast = run.extraSamples.map((e) => e[0]!);
    for (const x of fast) expect(x).toBeLessThanOrEqual(12 * 8); // batch 8
    expect(Math.max(...fast)).toBeGreaterThan(4 * 8);
    expectIdenticalAt(run, 23);
  });

  it("counts a step's gradients, inner update and outer step as its compute", async () => {
    const run = await runCluster({ ...base, workers: 2, steps: 4, sync: 'diloco', innerSteps: 2 });
    for (let s = 0; s < 4; s++) {
      const arithmetic = run.spans[0]!.filter(
        (x) => x.step === s && (x.kind === 'compute' || x.kind === 'optimizer'),
      );
      // Round ends (steps 1 and 3) have a second optimizer span: the outer step.
      expect(arithmetic).toHaveLength(s % 2 === 1 ? 3 : 2);
      const ms = arithmetic.reduce((a, x) => a + x.durMs, 0);
      expect(run.computeMs[s]![0]).toBeCloseTo(ms, 6);
    }
  });

  it("holds an inner step's report until its round ends, and the run's last step's never", async () => {
    const run = await runCluster({ ...base, workers: 2, steps: 5, sync: 'diloco', innerSteps: 2 });
    // Rounds end at steps 1 and 3; step 4 is the run's last.
    expect(run.held).toEqual([
      [true, true],
      [false, false],
      [true, true],
      [false, false],
      [false, false],
    ]);
  });
});
