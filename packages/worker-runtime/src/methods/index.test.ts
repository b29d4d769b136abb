import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunConfig, RunConfigInput } from '@peertrain/protocol';
import { UnknownMethodError, methodName, workerMethod } from './index.ts';
import type { Placement } from './index.ts';

const cfg = (input: RunConfigInput) => parseRunConfig({ dataset: 'synthetic', ...input });

describe('training method registry', () => {
  it('names one method per configuration', () => {
    expect(methodName(cfg({ workers: 2 }))).toBe('allreduce');
    expect(methodName(cfg({ workers: 2, sync: 'ps' }))).toBe('ps');
    expect(methodName(cfg({ workers: 2, sync: 'diloco', innerSteps: 5 }))).toBe('diloco');
    expect(methodName(cfg({ workers: 2, sync: 'ps-async' }))).toBe('ps-async');
    expect(methodName(cfg({ strategy: 'pipeline', model: 'deepMlp', workers: 3 }))).toBe('pipeline');
    expect(methodName(cfg({ strategy: 'hybrid', model: 'deepMlp', workers: 4, replicas: 2 }))).toBe('hybrid');
  });

  it('finds every named method under its own name', () => {
    for (const name of ['allreduce', 'ps', 'diloco', 'pipeline', 'hybrid', 'ps-async'] as const)
      expect(workerMethod(name).name).toBe(name);
  });

  it('refuses a name nothing is registered for with a named error', () => {
    expect(() => workerMethod('federated')).toThrow(UnknownMethodError);
    expect(() => workerMethod('toString')).toThrow(/no training method named "toString"/);
  });

  it("derives each method's links from the assignment", () => {
    const assign = (config: RunConfig, rank: number): Placement => ({
      config,
      rank,
      peers: Array.from({ length: config.workers }, (_, i) => `w${i}`),
    });
    // Ring of 3: rank 1 dials rank 2 and also needs rank 0.
    const ar = cfg({ workers: 3 });
    expect(workerMethod('allreduce').links(assign(ar, 1))).toEqual({ dial: ['w2'], need: ['w2', 'w0'] });
    const dl = cfg({ workers: 3, sync: 'diloco' });
    expect(workerMethod('diloco').links(assign(dl, 1))).toEqual({ dial: ['w2'], need: ['w2', 'w0'] });
    // Parameter server on rank 0: a star.
    const ps = cfg({ workers: 3, sync: 'ps' });
    expect(workerMethod('ps').links(assign(ps, 0))).toEqual({ dial: [], need: ['w1', 'w2'] });
    expect(workerMethod('ps').links(assign(ps, 2))).toEqual({ dial: ['w0'], need: ['w0'] });
    // Two server shards (ranks 0, 1) of 4: each server needs everyone, rank 1 dials rank 0,
    // a pure worker dials both servers.
    const sh = cfg({ workers: 4, sync: 'ps-async', psShards: 2 });
    expect(workerMethod('ps-async').links(assign(sh, 0))).toEqual({ dial: [], need: ['w1', 'w2', 'w3'] });
    expect(workerMethod('ps-async').links(assign(sh, 1))).toEqual({ dial: ['w0'], need: ['w0', 'w2', 'w3'] });
    expect(workerMethod('ps').links(assign({ ...sh, sync: 'ps' }, 3))).toEqual({
      dial: ['w0', 'w1'],
      need: ['w0', 'w1'],
    });
    // Hybrid 2 x 2: rank 1 (replica 0, stage 1) needs stage 0 and its stage group's ring (rank 3).
    const hy = cfg({ strategy: 'hybrid', model: 'deepMlp', workers: 4, replicas: 2 });
    expect(workerMethod('hybrid').links(assign(hy, 1))).toEqual({ dial: ['w3'], need: ['w0', 'w3', 'w3'] });
    expect(
      workerMethod('pipeline').links(assign(cfg({ strategy: 'pipeline', model: 'deepMlp', workers: 3 }), 2)),
    ).toEqual({
      dial: ['w0'],
      need: ['w1', 'w0'],
    });
  });
});
