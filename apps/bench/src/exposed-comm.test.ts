import { describe, expect, it } from 'vitest';
import { exposedComm, exposedRatio, overlapExposureCheck } from './exposed-comm.ts';

// Two ranks' spans as the coordinator's trace writes them: ts / dur in µs, one process per rank.
const meta = (pid: number) => ({
  name: 'process_name',
  ph: 'M',
  pid,
  tid: 0,
  args: { name: `rank ${pid - 1}` },
});
const span = (pid: number, name: string, fromMs: number, toMs: number, step: number) => ({
  name,
  ph: 'X',
  pid,
  tid: name === 'compute' || name === 'backward' || name === 'forward' ? 1 : 2,
  ts: fromMs * 1000,
  dur: (toMs - fromMs) * 1000,
  args: { step },
});

describe('exposedComm', () => {
  it('counts the all-reduce time no compute span of the same rank covers, per step', () => {
    const trace = {
      displayTimeUnit: 'ms',
      traceEvents: [
        meta(1),
        meta(2),
        // rank 0, step 0: backward [0, 10), all-reduce [6, 14): 4 ms hidden, 4 exposed
        span(1, 'backward', 0, 10, 0),
        span(1, 'allreduce', 6, 14, 0),
        span(1, 'reduceScatter', 6, 9, 0), // inside the all-reduce: counted once
        // rank 0, step 1: nothing overlapped: 5 ms exposed
        span(1, 'compute', 20, 30, 1),
        span(1, 'allreduce', 30, 35, 1),
        // rank 1, step 0: all hidden; another rank's compute never hides rank 0's
        span(2, 'forward', 0, 20, 0),
        span(2, 'allreduce', 5, 15, 0),
      ],
    };
    const r = exposedComm(trace);
    expect(r.ranks.map((x) => x.name)).toEqual(['rank 0', 'rank 1']);
    expect(r.ranks[0]).toMatchObject({ steps: 2, commMs: 13, hiddenMs: 4, exposedMs: 9 });
    expect(r.ranks[1]).toMatchObject({ steps: 1, commMs: 10, hiddenMs: 10, exposedMs: 0 });
    expect(r.exposedMsPerStep).toBeCloseTo((9 / 2 + 0) / 2, 12);
    expect(r.commMsPerStep).toBeCloseTo((13 / 2 + 10) / 2, 12);
    // Past the last rank's compute: step 0 none (rank 1 computed until 20, the exchange ended at
    // 15), step 1 5 ms (30 to 35).
    expect(r.criticalMsPerStep).toBeCloseTo(2.5, 12);
    // Warm-up left out: rank 0 keeps step 1 only, rank 1 has no spans left.
    const later = exposedComm(trace, 1);
    expect(later.ranks).toHaveLength(1);
    expect(later.ranks[0]).toMatchObject({ steps: 1, exposedMs: 5 });
  });

  it('leaves a wait for a slower rank out of the critical figure, not out of the per-rank one', () => {
    const trace = {
      traceEvents: [
        meta(1),
        meta(2),
        // rank 0 computes [0, 10) and waits in the exchange until rank 1 is done; rank 1 computes
        // [0, 25) and the exchange ends at 30 for both.
        span(1, 'backward', 0, 10, 0),
        span(1, 'allreduce', 10, 30, 0),
        span(1, 'optimizer', 30, 32, 0), // after the exchange: not gradient work
        span(2, 'backward', 0, 25, 0),
        span(2, 'allreduce', 25, 30, 0),
      ],
    };
    const r = exposedComm(trace);
    expect(r.exposedMsPerStep).toBeCloseTo((20 + 5) / 2, 12);
    expect(r.criticalMsPerStep).toBeCloseTo(5, 12);
    expect(
      exposedComm({ traceEvents: [meta(1), span(1, 'backward', 0, 10, 0)] }).criticalMsPerStep,
    ).toBeNaN();
  });

  it('gives the ratio of exposed time with overlap to without', () => {
    const run = (exposedMsPerStep: number) => ({
      ranks: [],
      exposedMsPerStep,
      commMsPerStep: 0,
      criticalMsPerStep: 0,
    });
    expect(exposedRatio(run(3), run(12))).toBe(0.25);
  });

  it('refuses what is not a trace', () => {
    expect(() => exposedComm({ traceEvents: 'no' })).toThrow(/chrome trace/);
  });

  it('checks the overlap row against the all-reduce row, the CNN at 4 tabs first, on the critical figure', () => {
    // ms: the critical figure; the per-rank figure is twice it here (waits for slower ranks).
    const row = (model: string, method: string, tabs: number, ms: number | null) => ({
      model,
      method,
      tabs,
      criticalCommMsPerStep: ms,
      exposedCommMsPerStep: ms === null ? null : 2 * ms,
    });
    const mlp = [row('mlp', 'allreduce', 3, 40), row('mlp', 'overlap', 3, 10)];
    expect(overlapExposureCheck(mlp)).toMatchObject({
      pass: true,
      value:
        '0.25x (10.0 vs 40.0 ms a step); per rank, waits for slower ranks included: 0.25x (20.0 vs 80.0 ms)',
    });
    const cnn = [
      ...mlp,
      row('cnn', 'allreduce', 4, 60),
      row('cnn', 'overlap', 4, 45),
      row('cnn', 'overlap', 2, 1),
    ];
    const check = overlapExposureCheck(cnn)!;
    expect(check.what).toMatch(/^cnn, 4 tabs/);
    expect(check).toMatchObject({ pass: false });
    expect(check.value).toMatch(/^0\.75x \(45\.0 vs 60\.0 ms a step\)/);
    expect(overlapExposureCheck([row('cnn', 'allreduce', 4, 60), row('cnn', 'overlap', 4, null)])).toBeNull();
  });
});
