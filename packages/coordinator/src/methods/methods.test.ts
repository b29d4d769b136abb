import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import type { PeerRecord } from '../membership.ts';
import type { PipelinePlan } from '../planning.ts';
import { STEP_WINDOW, barrierWindowOf } from './method.ts';
import type { MethodContext } from './method.ts';
import { stalenessReport } from './psAsync.ts';
import { methodFor, methodName } from './registry.ts';

const peers = ['a', 'b', 'c', 'd'].map((peerId) => ({ peerId }) as PeerRecord);

function ctx(input: RunConfigInput, plan?: PipelinePlan): MethodContext {
  const config = parseRunConfig({ dataset: 'synthetic', ...input });
  return {
    runId: 7,
    config,
    peers: peers.slice(0, config.workers),
    planPipeline: () => (plan ? Promise.resolve(plan) : Promise.reject(new Error('no plan here'))),
  };
}

// Two stages over 4 layers: [0, 2) and [2, 4).
const plan = {
  plan: {
    stages: [
      { first: 0, end: 2 },
      { first: 2, end: 4 },
    ],
    predictedStepMs: 12,
  },
  layers: [0, 1, 2, 3].map((i) => ({ name: `l${i}`, costMs: 1, paramBytes: 100 * i })),
} as unknown as PipelinePlan;

describe('coordinator methods', () => {
  it('names the method from the config in one place', () => {
    const name = (input: RunConfigInput): string => methodName(parseRunConfig(input));
    expect(name({ workers: 2 })).toBe('allreduce');
    expect(name({ workers: 2, sync: 'ps' })).toBe('parameter-server');
    expect(name({ workers: 2, sync: 'ps-async' })).toBe('ps-async');
    expect(name({ workers: 2, strategy: 'pipeline' })).toBe('pipeline');
    expect(name({ workers: 4, strategy: 'hybrid', replicas: 2 })).toBe('hybrid');
  });

  it('grants a method its own barrier window, STEP_WINDOW when it gives none', () => {
    expect(barrierWindowOf({})).toBe(STEP_WINDOW);
    expect(barrierWindowOf({ barrierWindow: 21 })).toBe(21); // e.g. a DiLoCo round of 20 inner steps
    expect(barrierWindowOf({ barrierWindow: 0 })).toBe(1); // a step is always granted
  });

  it('diloco: two rounds ahead (2H + 1), three with the overlapped outer step (3H + 1)', async () => {
    const plain = ctx({ workers: 3, sync: 'diloco', innerSteps: 20 });
    expect((await methodFor(plain.config).prepare(plain)).barrierWindow).toBe(41);
    const overlapped = ctx({ workers: 3, sync: 'diloco', innerSteps: 20, overlapOuter: true });
    const run = await methodFor(overlapped.config).prepare(overlapped);
    expect(run.barrierWindow).toBe(61);
    expect(run.assignments.map((a) => a.role)).toEqual(['worker', 'worker', 'worker']);
  });

  it('parameter server: rank 0 serves, every assign names it', async () => {
    const c = ctx({ workers: 3, sync: 'ps' });
    const run = await methodFor(c.config).prepare(c);
    expect(run.assignments.map((a) => a.role)).toEqual(['worker+server', 'worker', 'worker']);
    expect(run.assignments.every((a) => a.message.serverRank === 0)).toBe(true);
    expect(run.assignments[0]!.traceName).toBe('rank 0 (server)');
    expect(run.pipelineView).toBeNull();
    expect(run.barrierWindow).toBe(STEP_WINDOW);
  });

  it('ps-async: K shard servers, every step granted at once, staleness in the report', async () => {
    const c = ctx({ workers: 4, sync: 'ps-async', psShards: 2, staleness: 1, steps: 9 });
    const run = await methodFor(c.config).prepare(c);
    expect(run.assignments.map((a) => a.role)).toEqual([
      'worker+server',
      'worker+server',
      'worker',
      'worker',
    ]);
    expect(run.assignments.every((a) => a.message.serverRank === 0)).toBe(true);
    expect(run.barrierWindow).toBe(9);
    const done = {
      type: 'stepDone',
      runId: 7,
      step: 0,
      samples: 1,
      computeMs: 1,
      commMs: 0,
      bytesSent: 0,
    } as const;
    run.onStepDone?.(0, { ...done, staleness: 2 });
    run.onStepDone?.(0, { ...done, staleness: 4 });
    run.onStepDone?.(3, { ...done, staleness: 1 });
    run.onStepDone?.(2, done);
    const s = run.reportFields(null).staleness!;
    expect(s).toMatchObject({ bound: 1, max: 4 });
    expect(s.mean).toBeCloseTo(7 / 3);
    expect(s.perWorker.map((w) => w.steps)).toEqual([2, 0, 0, 1]);
    // Rank 0: 2 samples in 2 ms of steps.
    expect(s.perWorker[0]!.samplesPerSec).toBeCloseTo(1000);
    expect(stalenessReport(2, [[], []])).toMatchObject({ mean: 0, max: 0 });
  });

  it('sync ps with --ps-shards 3: ranks 0..2 serve', async () => {
    const c = ctx({ workers: 4, sync: 'ps', psShards: 3 });
    const run = await methodFor(c.config).prepare(c);
    expect(run.assignments.filter((a) => a.role === 'worker+server')).toHaveLength(3);
    expect(run.barrierWindow).toBe(STEP_WINDOW);
  });

  it('all-reduce: plain workers on disjoint shards, no server', async () => {
    const c = ctx({ workers: 2 });
    const run = await methodFor(c.config).prepare(c);
    expect(run.assignments.map((a) => a.role)).toEqual(['worker', 'worker']);
    expect(run.assignments.some((a) => 'serverRank' in a.message)).toBe(false);
    const [s0, s1] = run.assignments.map((a) => a.shard);
    expect(s0!.start + s0!.count).toBeLessThanOrEqual(s1!.start);
  });

  it('hybrid: rank r is stage r mod P of replica floor(r / P); the report takes replica 0 peaks', async () => {
    const c = ctx({ workers: 4, strategy: 'hybrid', replicas: 2, batch: 8, microBatches: 2 }, plan);
    const run = await methodFor(c.config).prepare(c);
    expect(run.assignments.map((a) => [a.stage!.stage, a.stage!.replica])).toEqual([
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    expect(run.assignments[3]!.message.role).toEqual({ kind: 'stage', stage: 1, replica: 1 });
    expect(run.bubble?.peers).toEqual(new Set(['a', 'b']));
    const step = {
      type: 'stepDone',
      runId: 7,
      step: 0,
      samples: 1,
      computeMs: 1,
      commMs: 1,
      bytesSent: 0,
    } as const;
    run.onStepDone?.(1, { ...step, peakActivationBytes: 50, peakActivationBytesNoRecompute: 80 });
    run.onStepDone?.(3, { ...step, peakActivationBytes: 999 }); // replica 1: not counted
    const report = run.reportFields(run.pipelineView)?.pipeline;
    expect(report?.perStage.map((s) => [s.peerId, s.parameterBytes, s.peakActivationBytes])).toEqual([
      ['a', 100, 0],
      ['b', 500, 50],
    ]);
    expect(report?.replicas).toBe(2);
  });
});
