import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { parseRunConfig, runShape } from './config.ts';

function issuesOf(input: unknown): string[] {
  try {
    parseRunConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('RunConfig shards (relative shard sizes per data-parallel rank)', () => {
  it('is optional: absent means equal shards', () => {
    expect(parseRunConfig({}).shards).toBeUndefined();
  });

  it('takes one weight per worker for data parallelism', () => {
    expect(parseRunConfig({ workers: 3, shards: [1, 2, 0.5] }).shards).toEqual([1, 2, 0.5]);
  });

  it('takes one weight per replica for hybrid and one for a pipeline', () => {
    expect(parseRunConfig({ strategy: 'hybrid', workers: 4, replicas: 2, shards: [3, 1] }).shards).toEqual([
      3, 1,
    ]);
    expect(issuesOf({ strategy: 'pipeline', workers: 3, shards: [1, 1, 1] })).toEqual([
      'shards: 3 shard weights for 1 data-parallel ranks',
    ]);
  });

  it('refuses a wrong length with the counts', () => {
    expect(issuesOf({ workers: 3, shards: [1, 1] })).toEqual([
      'shards: 2 shard weights for 3 data-parallel ranks',
    ]);
  });

  it('refuses zero, negative and non-finite weights naming the rank', () => {
    expect(issuesOf({ workers: 3, shards: [1, 0, -2] })).toEqual([
      'shards: rank 1: shard weight 0 is not a number > 0',
      'shards: rank 2: shard weight -2 is not a number > 0',
    ]);
    const inf = issuesOf({ workers: 1, shards: [Infinity] });
    expect(inf).toHaveLength(1);
    expect(inf[0]).toMatch(/^shards\.0: /);
  });
});

describe('RunConfig partition (pipeline and hybrid)', () => {
  it('is checked against the model preset and the stage count when the config is read', () => {
    const cnn = { strategy: 'pipeline', model: 'cnn', workers: 2 } as const; // cnn: 8 layers
    expect(issuesOf({ ...cnn, partition: '0-2,3-7' })).toEqual([]);
    expect(issuesOf({ ...cnn, partition: '0-2,4-7' })).toEqual([
      'partition: stage 1 starts at layer 4, not 3 (ranges must be contiguous)',
    ]);
    expect(issuesOf({ ...cnn, partition: '0-2,3-8' })).toEqual([
      "partition: '3-8' reaches layer 8; the model has layers 0-7",
    ]);
    expect(issuesOf({ ...cnn, partition: '0-7' })).toEqual(['partition: 1 ranges for 2 stages']);
    // hybrid: stages = workers / replicas
    expect(
      issuesOf({ strategy: 'hybrid', model: 'cnn', workers: 4, replicas: 2, partition: '0-3,4-7' }),
    ).toEqual([]);
  });

  it("is not checked for data parallelism (no stages) or 'auto'", () => {
    expect(issuesOf({ strategy: 'data', partition: '0-99' })).toEqual([]);
    expect(issuesOf({ strategy: 'pipeline', partition: 'auto' })).toEqual([]);
  });

  it('refuses more stages than the model has layers when the config is read, naming deeper models', () => {
    // mlp: 3 layers. 4 stages (5 workers, a spare) could not each get one: the planner's late PlanError.
    const spare = { strategy: 'pipeline', workers: 5, spares: 1, elastic: true } as const;
    expect(issuesOf(spare)).toEqual([
      'workers: 4 stages need a model of at least 4 layers; mlp has 3: model cnn or deepMlp or wideMlp, or fewer stage workers',
    ]);
    expect(issuesOf({ ...spare, model: 'cnn' })).toEqual([]);
    expect(issuesOf({ strategy: 'pipeline', workers: 3 })).toEqual([]);
    // interleaved: every peer holds virtualStages chunks.
    const inter = { strategy: 'pipeline', schedule: 'interleaved', microBatches: 8 } as const;
    expect(issuesOf({ ...inter, model: 'cnn', workers: 4, virtualStages: 2 })).toEqual([]);
    expect(issuesOf({ ...inter, model: 'cnn', workers: 4, virtualStages: 3 })[0]).toBe(
      'workers: 12 stages need a model of at least 12 layers; cnn has 8: fewer stage workers',
    );
    // Only the deeper presets are named.
    expect(issuesOf({ strategy: 'pipeline', model: 'cnn', workers: 9 })).toEqual([
      'workers: 9 stages need a model of at least 9 layers; cnn has 8: model deepMlp or wideMlp, or fewer stage workers',
    ]);
  });
});

describe('RunConfig communication-efficient methods', () => {
  it('defaults to uncompressed synchronous all-reduce with DiLoCo outer defaults ready', () => {
    const c = parseRunConfig({});
    expect(c).toMatchObject({ sync: 'allreduce', compress: 'none', innerSteps: 20, outerLr: 0.7 });
    expect(c).toMatchObject({ outerMomentum: 0.9, outerNesterov: true, overlapOuter: false, psShards: 1 });
    expect(c.targetAccuracy).toBeUndefined();
  });

  it('overlap: off by default, only for uncompressed synchronous all-reduce', () => {
    expect(parseRunConfig({}).overlap).toBe(false);
    expect(parseRunConfig({ overlap: true }).overlap).toBe(true);
    expect(() => parseRunConfig({ overlap: true, compress: 'int8' })).toThrow(/overlap/);
    expect(() => parseRunConfig({ overlap: true, sync: 'ps' })).toThrow(/overlap/);
  });

  it('fillWaits: off by default, only for diloco with the outer step overlapped', () => {
    expect(parseRunConfig({}).fillWaits).toBe(false);
    const d = { sync: 'diloco', overlapOuter: true, fillWaits: true } as const;
    expect(parseRunConfig(d).fillWaits).toBe(true);
    expect(issuesOf({ ...d, overlapOuter: false })).toEqual([
      'fillWaits: fillWaits applies to strategy data, sync diloco with overlapOuter',
    ]);
    expect(issuesOf({ ...d, sync: 'allreduce' })).toEqual([
      'fillWaits: fillWaits applies to strategy data, sync diloco with overlapOuter',
    ]);
  });

  it('fillMax: unset by default (H), a positive integer, only with fillWaits', () => {
    const d = { sync: 'diloco', overlapOuter: true, fillWaits: true } as const;
    expect(parseRunConfig(d).fillMax).toBeUndefined();
    expect(parseRunConfig({ ...d, fillMax: 400 }).fillMax).toBe(400);
    expect(issuesOf({ ...d, fillWaits: false, fillMax: 400 })).toEqual([
      'fillMax: fillMax applies with fillWaits',
    ]);
    expect(issuesOf({ ...d, fillMax: 0 })[0]).toMatch(/^fillMax: /);
    expect(issuesOf({ ...d, fillMax: 2.5 })[0]).toMatch(/^fillMax: /);
  });

  it('takes every compression spec and refuses malformed ones by name', () => {
    for (const spec of ['none', 'fp16', 'int8', 'topk:0.01', 'topk:.5', 'topk:1', 'powersgd:4'])
      expect(parseRunConfig({ compress: spec }).compress).toBe(spec);
    expect(issuesOf({ compress: 'int4' })[0]).toMatch(/^compress: expected none, fp16, int8/);
    expect(issuesOf({ compress: 'topk:0' })).toEqual(['compress: topk fraction 0 is not in (0, 1]']);
    expect(issuesOf({ compress: 'topk:1.5' })).toEqual(['compress: topk fraction 1.5 is not in (0, 1]']);
    expect(issuesOf({ compress: 'powersgd:0' })[0]).toMatch(/^compress: expected/);
    expect(issuesOf({ compress: 'powersgd:999' })).toEqual(['compress: powersgd rank 999 is over 256']);
  });

  it('checks server shards and the target against the rest of the config', () => {
    expect(parseRunConfig({ sync: 'ps-async', workers: 4, psShards: 2 }).psShards).toBe(2);
    expect(issuesOf({ sync: 'diloco', psShards: 2 })).toEqual([
      'psShards: server shards apply to sync ps or ps-async, not diloco',
    ]);
    expect(issuesOf({ sync: 'ps', workers: 2, psShards: 3 })).toEqual([
      'psShards: 3 server shards for 2 workers: at most one per worker',
    ]);
    expect(issuesOf({ targetAccuracy: 0.9, evalEvery: 0 })).toEqual([
      'evalEvery: a target accuracy needs evaluations: set evalEvery > 0',
    ]);
    expect(issuesOf({ targetAccuracy: 1.2 })[0]).toMatch(/^targetAccuracy:/);
  });
});

describe('RunConfig elastic', () => {
  it('is off by default and applies to data parallel all-reduce without compression', () => {
    expect(parseRunConfig({}).elastic).toBe(false);
    expect(parseRunConfig({ elastic: true, sync: 'allreduce' }).elastic).toBe(true);
    expect(() => parseRunConfig({ elastic: true, sync: 'ps' })).toThrow(ConfigError);
    expect(() => parseRunConfig({ elastic: true, compress: 'int8' })).toThrow(ConfigError);
    expect(() => parseRunConfig({ elastic: true, strategy: 'hybrid', workers: 4, replicas: 2 })).toThrow(
      ConfigError,
    );
  });

  it('takes diloco without overlap, with none, fp16 or int8, keeping the global batch', () => {
    const d = { elastic: true, sync: 'diloco', innerSteps: 10 } as const;
    expect(parseRunConfig(d).elastic).toBe(true);
    expect(parseRunConfig({ ...d, compress: 'int8' }).compress).toBe('int8');
    expect(issuesOf({ ...d, compress: 'topk:0.01' })).toEqual([
      'compress: elastic diloco compresses with none, fp16 or int8, not topk:0.01',
    ]);
    expect(issuesOf({ ...d, overlapOuter: true })).toEqual([
      'overlapOuter: elastic diloco runs without --overlap-outer',
    ]);
    expect(issuesOf({ ...d, elasticPolicy: 'scaled-lr' })).toEqual([
      'elasticPolicy: elastic diloco keeps the global batch (fixed-global), not scaled-lr',
    ]);
    expect(issuesOf({ elastic: true, sync: 'ps' })).toEqual([
      'sync: elastic data parallel runs sync allreduce, diloco or ps-async, not ps',
    ]);
    expect(parseRunConfig({ elastic: true, sync: 'ps-async', compress: 'int8' }).elastic).toBe(true);
    expect(issuesOf({ elastic: true, compress: 'fp16' })).toEqual([
      'compress: elastic all-reduce runs uncompressed, not fp16',
    ]);
  });

  it('takes pipelines (gpipe, 1f1b, zb-h1; fp16 activations) with spares beside the stages, and refuses the rest by name', () => {
    const c = parseRunConfig({ strategy: 'pipeline', workers: 5, spares: 1, elastic: true, model: 'cnn' });
    expect([c.spares, c.stageCheckpointEvery, runShape(c).stages]).toEqual([1, 10, 4]);
    const p = { strategy: 'pipeline', workers: 3, elastic: true } as const;
    expect(parseRunConfig({ ...p, schedule: 'gpipe' }).elastic).toBe(true);
    expect(parseRunConfig({ ...p, schedule: 'zb-h1', activationCompress: 'fp16' }).elastic).toBe(true);
    expect(
      issuesOf({ ...p, model: 'cnn', schedule: 'interleaved', virtualStages: 2, microBatches: 6 }),
    ).toEqual(['schedule: elastic pipelines run gpipe, 1f1b or zb-h1, not interleaved']);
    expect(issuesOf({ ...p, activationCompress: 'int8' })[0]).toMatch(
      /^activationCompress: elastic pipelines send float32 or fp16 activations, not int8/,
    );
    expect(issuesOf({ strategy: 'pipeline', workers: 3, spares: 1 })).toEqual([
      'spares: spares apply to elastic pipelines (strategy pipeline, elastic)',
    ]);
    expect(issuesOf({ ...p, spares: 3 })[0]).toMatch(/^spares: 3 spares of 3 workers leave no stage/);
    // the partition counts the stages, not the spares
    expect(issuesOf({ ...p, workers: 5, spares: 1, model: 'cnn', partition: '0-2,3-3,4-5,6-7' })).toEqual([]);
  });
});

describe('RunConfig schedules with chunks and split backward', () => {
  it('takes zb-h1 and interleaved with its chunks per peer; V defaults to 1', () => {
    expect(parseRunConfig({ strategy: 'pipeline', workers: 2, schedule: 'zb-h1' }).virtualStages).toBe(1);
    const c = parseRunConfig({
      ...{ strategy: 'pipeline', model: 'cnn', workers: 2, schedule: 'interleaved', virtualStages: 2 },
    });
    expect([c.schedule, c.virtualStages]).toEqual(['interleaved', 2]);
  });

  it('refuses chunks without interleaved, interleaved on one stage, with M < P or in a hybrid', () => {
    expect(issuesOf({ strategy: 'pipeline', workers: 2, virtualStages: 2 })).toEqual([
      'virtualStages: virtualStages 2: only the interleaved schedule holds several chunks per peer',
    ]);
    expect(issuesOf({ strategy: 'pipeline', workers: 1, schedule: 'interleaved' })).toEqual([
      'microBatches: interleaved needs at least 2 stages, got 1',
    ]);
    const four = { strategy: 'pipeline', model: 'cnn', workers: 4 } as const;
    expect(issuesOf({ ...four, schedule: 'interleaved', microBatches: 2 })).toEqual([
      'microBatches: interleaved needs microBatches >= stages, got M = 2 < P = 4',
    ]);
    expect(issuesOf({ strategy: 'hybrid', workers: 4, replicas: 2, schedule: 'interleaved' })).toEqual([
      'schedule: interleaved runs with strategy pipeline (one replica)',
    ]);
  });

  it('checks a given partition against P x V chunks', () => {
    const cnn = { strategy: 'pipeline', model: 'cnn', workers: 2, schedule: 'interleaved' } as const;
    expect(issuesOf({ ...cnn, virtualStages: 2, partition: '0-1,2-3,4-5,6-7' })).toEqual([]);
    expect(issuesOf({ ...cnn, virtualStages: 2, partition: '0-3,4-7' })).toEqual([
      'partition: 2 ranges for 4 stages',
    ]);
  });
});
