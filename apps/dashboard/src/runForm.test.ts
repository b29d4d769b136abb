import { describe, expect, it } from 'vitest';
import { ConfigError, SCHEDULES, parseRunConfig, runShape } from '@peertrain/protocol';
import {
  SCHEDULE_CHOICES,
  checkRunForm,
  describeShape,
  formSpares,
  initialRunForm,
  issueField,
  issuesByField,
  presetLayerNames,
  runFormToConfig,
  withCompress,
  withStrategy,
  type RunFormState,
} from './runForm.ts';

const form = (patch: Partial<RunFormState>): RunFormState => ({ ...initialRunForm(), ...patch });
const issuesOf = (f: RunFormState): string[] => {
  const check = checkRunForm(f);
  return check.ok ? [] : check.issues;
};

describe('run form', () => {
  it('starts from the protocol defaults and round-trips them', () => {
    expect(runFormToConfig(initialRunForm())).toEqual(parseRunConfig({}));
  });

  it('builds the optimizer from the choice', () => {
    const form = {
      ...initialRunForm(),
      optimizer: 'adam' as const,
      lr: '0.001',
      workers: ' 4 ',
      reference: true,
    };
    const cfg = runFormToConfig(form);
    expect(cfg.optimizer).toEqual({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    expect(cfg).toMatchObject({ lr: 0.001, workers: 4, reference: true });
    expect(runFormToConfig({ ...initialRunForm(), momentum: '0.5' }).optimizer).toEqual({
      kind: 'sgd',
      momentum: 0.5,
    });
  });

  it('names every bad field', () => {
    try {
      runFormToConfig({ ...initialRunForm(), steps: '', batch: 'abc' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        'steps: "" is not a number',
        'batch: "abc" is not a number',
      ]);
    }
    expect(() => runFormToConfig({ ...initialRunForm(), workers: '0' })).toThrow(/workers/);
    expect(() => runFormToConfig({ ...initialRunForm(), batch: '2.5' })).toThrow(/batch/);
  });

  it('maps the strategy choice onto strategy and sync', () => {
    expect(runFormToConfig(form({ strategy: 'ps' }))).toMatchObject({ strategy: 'data', sync: 'ps' });
    expect(runFormToConfig(form({ strategy: 'data' }))).toMatchObject({
      strategy: 'data',
      sync: 'allreduce',
    });
    const pipe = runFormToConfig(withStrategy(form({ model: 'deepMlp' }), 'pipeline'));
    expect(pipe).toMatchObject({ strategy: 'pipeline', sync: 'allreduce', replicas: 1, batch: 128 });
    expect(pipe).toMatchObject({ schedule: '1f1b', microBatches: 8, recompute: false, partition: 'auto' });
  });

  it('leaves pipeline settings out of a data-parallel run', () => {
    // A schedule picked and then abandoned must not leak into the data run's config.
    const cfg = runFormToConfig(
      form({ schedule: 'gpipe', microBatches: '4', recompute: true, replicas: '3' }),
    );
    expect(cfg).toEqual(parseRunConfig({}));
  });

  it('passes pipeline and hybrid settings through', () => {
    const hybrid = form({
      strategy: 'hybrid',
      workers: '6',
      replicas: '2',
      schedule: 'gpipe',
      microBatches: ' 4 ',
      recompute: true,
      model: 'deepMlp',
      partition: '0-3, 4-6, 7-8',
      batch: '64',
    });
    expect(runFormToConfig(hybrid)).toMatchObject({
      strategy: 'hybrid',
      workers: 6,
      replicas: 2,
      schedule: 'gpipe',
      microBatches: 4,
      recompute: true,
      partition: '0-3, 4-6, 7-8',
      batch: 64,
    });
    // Blank micro-batches: the schedule's default.
    expect(
      runFormToConfig(form({ strategy: 'pipeline', schedule: 'naive', microBatches: '' })).microBatches,
    ).toBe(1);
  });

  it('offers every protocol schedule, interleaved with its chunks per peer, each a valid config', () => {
    expect(SCHEDULE_CHOICES.map(([k]) => k).sort()).toEqual([...SCHEDULES].sort());
    const pipe = (patch: Partial<RunFormState>): RunFormState => ({
      ...withStrategy(form({ model: 'wideMlp', workers: '4' }), 'pipeline'),
      ...patch,
    });
    // What the protocol's schema (zod) accepts, exactly as the coordinator would parse it.
    const interleaved = runFormToConfig(pipe({ schedule: 'interleaved', virtualStages: ' 2 ' }));
    expect(interleaved).toEqual(
      parseRunConfig({
        strategy: 'pipeline',
        model: 'wideMlp',
        workers: 4,
        schedule: 'interleaved',
        virtualStages: 2,
      }),
    );
    expect(interleaved).toMatchObject({ schedule: 'interleaved', virtualStages: 2, microBatches: 8 });
    expect(describeShape(interleaved)).toBe(
      '4 stages × 1 replica · 2 chunks per peer · global batch 128 · 8 micro-batches of 16',
    );
    // P x V = 8 chunks typed by hand (the plan editor draws one range per peer).
    expect(
      runFormToConfig(pipe({ schedule: 'interleaved', partition: '0-0,1-1,2-3,4-4,5-5,6-6,7-7,8-8' }))
        .partition,
    ).toBe('0-0,1-1,2-3,4-4,5-5,6-6,7-7,8-8');
    expect(runFormToConfig(pipe({ schedule: 'zb-h1' }))).toMatchObject({
      schedule: 'zb-h1',
      virtualStages: 1,
      microBatches: 8,
    });
    // A V typed for interleaved and then abandoned does not reach another schedule.
    expect(runFormToConfig(pipe({ schedule: '1f1b', virtualStages: '3' })).virtualStages).toBe(1);
    expect(initialRunForm().virtualStages).toBe('2');
  });

  it("names the interleaved schedule's own issues by field", () => {
    const pipe = (patch: Partial<RunFormState>): string[] =>
      issuesOf(
        form({ strategy: 'pipeline', model: 'wideMlp', workers: '4', schedule: 'interleaved', ...patch }),
      );
    expect(pipe({ virtualStages: 'two' })).toEqual(['virtualStages: "two" is not a number']);
    expect(pipe({ virtualStages: '0' })[0]).toMatch(/^virtualStages: /);
    expect(pipe({ microBatches: '2' })).toEqual([
      'microBatches: interleaved needs microBatches >= stages, got M = 2 < P = 4',
    ]);
    expect(pipe({ partition: '0-1,2-3,4-5,6-8' })[0]).toMatch(/^partition: 4 ranges for 8 stages/);
    expect(
      issuesOf(form({ strategy: 'hybrid', workers: '4', replicas: '2', schedule: 'interleaved' })),
    ).toContain('schedule: interleaved runs with strategy pipeline (one replica)');
  });

  it('reports the schema issues of pipeline settings next to their fields', () => {
    const issues = issuesOf(form({ strategy: 'hybrid', workers: '3', replicas: '2', microBatches: 'x' }));
    expect(issues).toContain('microBatches: "x" is not a number');
    const byField = issuesByField(issues);
    expect(byField.get('workers')?.[0]).toMatch(/3 stage workers do not split into 2 replicas/);
    expect(byField.get('microBatches')).toEqual(['"x" is not a number']);
    expect(issuesOf(form({ strategy: 'pipeline', schedule: 'naive', microBatches: '4' }))).toEqual([
      'microBatches: naive runs the whole batch at once: microBatches must be 1, got 4',
    ]);
    expect(issuesOf(form({ strategy: 'pipeline', batch: '4', microBatches: '8' }))[0]).toMatch(
      /^microBatches: 8 micro-batches need a batch of at least 8/,
    );
  });

  it('checks a user partition: ranges, one per stage, covering the model', () => {
    const pipe = (partition: string, workers = '3'): string[] =>
      issuesOf(form({ strategy: 'pipeline', model: 'deepMlp', partition, workers }));
    expect(pipe('auto')).toEqual([]);
    expect(pipe('')).toEqual([]);
    expect(pipe('0-2,3-5,6-8')).toEqual([]);
    expect(pipe('0-2,3-8')).toEqual(['partition: 2 ranges for 3 stages']);
    expect(pipe('0-2,x,6-8')).toEqual(["partition: 'x' is not a layer range like 3-5"]);
    // The model's layers (deepMlp has 9): coverage and contiguity, before any peer is asked.
    expect(pipe('0-2,3-5,6-7')).toEqual([
      'partition: the last stage ends at layer 7, not 8 (the last layer)',
    ]);
    expect(pipe('0-2,4-5,6-8')).toEqual([
      'partition: stage 1 starts at layer 4, not 3 (ranges must be contiguous)',
    ]);
    expect(issuesOf(form({ strategy: 'pipeline', model: 'mlp', partition: '0-2,3-5,6-8' }))[0]).toBe(
      "partition: '3-5' reaches layer 5; the model has layers 0-2",
    );
    // Hybrid: stages = workers / replicas.
    expect(
      issuesOf(
        form({ strategy: 'hybrid', model: 'deepMlp', workers: '4', replicas: '2', partition: '0-4,5-8' }),
      ),
    ).toEqual([]);
    // With workers unreadable, the count is not checked (the workers issue says enough).
    expect(pipe('0-2', 'many')).toEqual(['workers: "many" is not a number']);
  });

  it('splits issues into fields, mapping config paths the form shows elsewhere', () => {
    expect(issueField('optimizer.momentum: Too big')).toEqual({ field: 'momentum', message: 'Too big' });
    expect(issueField('sync: hybrid needs allreduce')).toEqual({
      field: 'strategy',
      message: 'hybrid needs allreduce',
    });
    expect(issueField('(root): odd')).toEqual({ field: null, message: '(root): odd' });
    expect(issueField('no colon here')).toEqual({ field: null, message: 'no colon here' });
  });

  it('moves the batch to the new strategy default unless the user changed it', () => {
    const pipe = withStrategy(initialRunForm(), 'pipeline');
    expect(pipe.batch).toBe('128');
    expect(withStrategy(pipe, 'data').batch).toBe('32');
    expect(withStrategy(form({ batch: '50' }), 'pipeline').batch).toBe('50');
    expect(withStrategy(initialRunForm(), 'ps').batch).toBe('32');
    expect(withStrategy(initialRunForm(), 'hybrid').replicas).toBe('2');
    expect(withStrategy(form({ replicas: '3' }), 'hybrid').replicas).toBe('3');
  });

  it('describes the shape of a valid run', () => {
    expect(describeShape(parseRunConfig({}))).toBe('3 workers · global batch 96');
    expect(describeShape(parseRunConfig({ sync: 'ps', workers: 2 }))).toBe(
      '2 workers, one also serves parameters · global batch 64',
    );
    expect(describeShape(parseRunConfig({ strategy: 'hybrid', workers: 6, replicas: 2 }))).toBe(
      '3 stages × 2 replicas · global batch 256 · 8 micro-batches of 16',
    );
    expect(
      describeShape(parseRunConfig({ strategy: 'pipeline', workers: 2, batch: 100, microBatches: 8 })),
    ).toBe('2 stages × 1 replica · global batch 100 · 8 micro-batches of ~12');
  });

  it('sends typed shard sizes as the config shards (data parallelism only)', () => {
    expect(runFormToConfig(form({ workers: '3', shards: ['1000', '2000', '5000'] })).shards).toEqual([
      1000, 2000, 5000,
    ]);
    expect(runFormToConfig(form({ workers: '3' })).shards).toBeUndefined();
    // a pipeline has no per-worker shards in the form
    const pipe = { ...withStrategy(form({ workers: '3' }), 'pipeline'), shards: ['1', '2', '3'] };
    expect(runFormToConfig(pipe).shards).toBeUndefined();
  });

  it('refuses shard sizes that are not whole, positive, or that exceed the train set', () => {
    expect(issuesOf(form({ workers: '2', shards: ['0', '1.5'] }))).toEqual([
      'shards: worker 0: "0" is not a whole number of samples >= 1',
      'shards: worker 1: "1.5" is not a whole number of samples >= 1',
    ]);
    expect(issuesOf(form({ workers: '2', shards: ['7000', '2000'] }))).toEqual([
      'shards: the shards hold 9000 samples; the train set has 8000',
    ]);
    // the protocol counts them against the workers, under the same field
    const wrong = issuesOf(form({ workers: '3', shards: ['100', '200'] }));
    expect(wrong).toEqual(['shards: 2 shard weights for 3 data-parallel ranks']);
    expect(issuesByField(wrong).get('shards')).toEqual(['2 shard weights for 3 data-parallel ranks']);
  });

  it('names the layers of a preset as the workers profile them, without the engine', () => {
    expect(presetLayerNames('mlp')).toEqual(['0.dense', '1.relu', '2.dense']);
    expect(presetLayerNames('cnn')).toHaveLength(8);
    expect(presetLayerNames('cnn')[6]).toBe('6.flatten');
  });

  it('offers local steps and the asynchronous server with their settings, and only theirs', () => {
    const diloco = { innerSteps: '8', outerLr: '1', outerMomentum: '0', outerNesterov: false };
    expect(runFormToConfig(form({ strategy: 'diloco', ...diloco, overlapOuter: true }))).toMatchObject({
      strategy: 'data',
      sync: 'diloco',
      innerSteps: 8,
      outerLr: 1,
      outerMomentum: 0,
      outerNesterov: false,
      overlapOuter: true,
    });
    const fill = { strategy: 'diloco', ...diloco, fillWaits: true } as const;
    expect(runFormToConfig(form({ ...fill, overlapOuter: true })).fillWaits).toBe(true);
    expect(runFormToConfig(form({ ...fill, overlapOuter: true })).fillMax).toBeUndefined(); // blank: H
    expect(runFormToConfig(form({ ...fill, overlapOuter: true, fillMax: '200' })).fillMax).toBe(200);
    expect(() => runFormToConfig(form({ ...fill, overlapOuter: true, fillMax: '0' }))).toThrow(/fillMax/);
    // Hidden without the fill box: a number left in it is ignored.
    expect(runFormToConfig(form({ ...fill, fillWaits: false, fillMax: '200' })).fillMax).toBeUndefined();
    // Without overlap the box is hidden and its tick ignored.
    expect(runFormToConfig(form({ ...fill, overlapOuter: false })).fillWaits).toBe(false);
    const async = runFormToConfig(
      form({ strategy: 'ps-async', staleness: '4', psShards: '2', workers: '3' }),
    );
    expect(async).toMatchObject({ sync: 'ps-async', staleness: 4, psShards: 2 });
    // Settings of a method not chosen do not leak into the config: the schema's defaults stand.
    const plain = runFormToConfig(form({ ...diloco, staleness: '9', psShards: '2' }));
    const defaults = parseRunConfig({});
    expect(plain).toMatchObject({
      sync: 'allreduce',
      innerSteps: defaults.innerSteps,
      staleness: 2,
      psShards: 1,
    });
    expect(issuesOf(form({ strategy: 'diloco', innerSteps: '0' }))).toEqual([
      'innerSteps: Too small: expected number to be >=1',
    ]);
    expect(issuesByField(issuesOf(form({ strategy: 'ps', psShards: '5' }))).get('psShards')).toEqual([
      '5 server shards for 3 workers: at most one per worker',
    ]);
  });

  it('builds the compression spec from the kind and its argument, validated by the schema', () => {
    expect(runFormToConfig(form({ compress: 'int8' })).compress).toBe('int8');
    const topk = withCompress(initialRunForm(), 'topk');
    expect(topk.compressArg).toBe('0.01');
    expect(runFormToConfig(topk).compress).toBe('topk:0.01');
    expect(runFormToConfig({ ...withCompress(topk, 'powersgd') }).compress).toBe('powersgd:4');
    // A typed argument stays while the kind does; another kind starts from its own default.
    expect(withCompress({ ...topk, compressArg: '0.05' }, 'topk').compressArg).toBe('0.05');
    expect(withCompress({ ...topk, compressArg: '0.05' }, 'fp16').compressArg).toBe('');
    const bad = issuesByField(issuesOf({ ...topk, compressArg: '2' }));
    expect(bad.get('compress')).toEqual(['topk fraction 2 is not in (0, 1]']);
    // Pipelines exchange activations the methods do not compress: the choice is not sent.
    expect(
      runFormToConfig(withStrategy(form({ compress: 'int8', model: 'deepMlp' }), 'pipeline')).compress,
    ).toBe('none');
    expect(initialRunForm(parseRunConfig({ compress: 'powersgd:8' }))).toMatchObject({
      compress: 'powersgd',
      compressArg: '8',
    });
  });

  it('sends a target accuracy when one is typed, checked by the schema', () => {
    expect(runFormToConfig(form({})).targetAccuracy).toBeUndefined();
    expect(runFormToConfig(form({ targetAccuracy: ' 0.92 ' })).targetAccuracy).toBe(0.92);
    expect(issuesOf(form({ targetAccuracy: '92%' }))).toEqual(['targetAccuracy: "92%" is not a number']);
    expect(issuesByField(issuesOf(form({ targetAccuracy: '1.5' }))).has('targetAccuracy')).toBe(true);
    expect(initialRunForm(parseRunConfig({ targetAccuracy: 0.9 })).targetAccuracy).toBe('0.9');
  });

  it('describes local steps, the asynchronous server, compression and the target', () => {
    const cfg = (patch: Partial<RunFormState>) => runFormToConfig(form(patch));
    expect(describeShape(cfg({ strategy: 'diloco', innerSteps: '20' }))).toBe(
      '3 workers averaging every 20 steps · global batch 96',
    );
    expect(
      describeShape(cfg({ strategy: 'ps-async', psShards: '2', compress: 'fp16', targetAccuracy: '0.92' })),
    ).toBe(
      '3 workers, 2 also serve parameters, at most 2 versions stale · global batch 96 · compressed fp16 · stops at 92.0% accuracy',
    );
    const pipe = runFormToConfig(withStrategy(form({ targetAccuracy: '0.9' }), 'pipeline'));
    expect(describeShape(pipe)).toMatch(/micro-batches of 16 · stops at 90.0% accuracy$/);
  });

  it('offers elastic runs for all-reduce, local steps and ps-async, checked by the schema, and describes them', () => {
    expect(initialRunForm().elastic).toBe(false);
    expect(runFormToConfig(form({ elastic: true })).elastic).toBe(true);
    const local = runFormToConfig(form({ strategy: 'diloco', elastic: true, compress: 'int8' }));
    expect(local).toMatchObject({ sync: 'diloco', elastic: true, compress: 'int8' });
    expect(describeShape(local)).toBe(
      '3 workers averaging every 20 steps · global batch 96 · compressed int8 · elastic: a closed tab costs a round',
    );
    expect(describeShape(runFormToConfig(form({ elastic: true })))).toMatch(
      /elastic: a closed tab costs a step$/,
    );
    const asyncPs = runFormToConfig(form({ strategy: 'ps-async', elastic: true }));
    expect(describeShape(asyncPs)).toMatch(
      /elastic: a closed tab stops only its own pushes \(not a server's\)$/,
    );
    // Not offered elsewhere: a box left ticked does not leak into a synchronous parameter server run.
    expect(runFormToConfig(form({ strategy: 'ps', elastic: true })).elastic).toBe(false);
    // What elastic runs do not take is named under its field.
    const topk = withCompress(form({ strategy: 'diloco', elastic: true }), 'topk');
    const issues = issuesByField(issuesOf(topk));
    expect(issues.get('compress')).toEqual([
      'elastic diloco compresses with none, fp16 or int8, not topk:0.01',
    ]);
    expect(initialRunForm(parseRunConfig({ elastic: true })).elastic).toBe(true);
  });

  it('offers elastic pipelines with spares, counted out of the stages, and starts from a run that had them', () => {
    const pipe = { ...withStrategy(form({ model: 'cnn', workers: '5' }), 'pipeline'), elastic: true };
    expect(formSpares(pipe)).toBe(1); // the form's default when the box is ticked
    const c = runFormToConfig(pipe);
    expect([c.elastic, c.spares, runShape(c).stages]).toEqual([true, 1, 4]);
    expect(describeShape(c)).toMatch(
      /^4 stages × 1 replica · 1 spare \(a lost stage's layers go to one\) · /,
    );
    // Unticked, the spares typed do not leak: five stages.
    const plain = runFormToConfig({ ...pipe, elastic: false, spares: '2' });
    expect([plain.elastic, plain.spares, runShape(plain).stages]).toEqual([false, 0, 5]);
    expect(formSpares({ ...pipe, elastic: false })).toBe(0);
    // The schema's issues land under the fields: too many spares, a schedule elastic runs refuse.
    expect(issuesByField(issuesOf({ ...pipe, spares: '5' })).get('spares')?.[0]).toMatch(
      /^5 spares of 5 workers leave no stage/,
    );
    expect(issuesByField(issuesOf({ ...pipe, spares: 'x' })).get('spares')).toEqual(['"x" is not a number']);
    const inter = { ...pipe, schedule: 'interleaved' as const, microBatches: '8' };
    expect(issuesByField(issuesOf(inter)).get('schedule')?.[0]).toMatch(/^elastic pipelines run gpipe/);
    // A hybrid is not elastic: a box left ticked does not leak.
    const hybrid = runFormToConfig(withStrategy({ ...pipe, workers: '4' }, 'hybrid'));
    expect([hybrid.elastic, hybrid.spares]).toEqual([false, 0]);
    // The form opened on such a run (the CLI's, or a resumed one) shows its spares.
    const from = initialRunForm(
      parseRunConfig({ strategy: 'pipeline', model: 'cnn', workers: 6, spares: 2, elastic: true }),
    );
    expect([from.elastic, from.spares]).toEqual([true, '2']);
  });
});
