import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHROMIUM } from '@peertrain/harness';
import { DEFAULT_REPORT, parseCommandLine } from './args.ts';

function train(argv: string[]) {
  const cmd = parseCommandLine(['train', ...argv]);
  if (cmd.kind !== 'train') throw new Error('expected train');
  return cmd;
}

function issuesOf(argv: string[]): readonly string[] {
  try {
    parseCommandLine(argv);
  } catch (err) {
    expect((err as Error).name).toBe('ConfigError');
    return (err as { issues: readonly string[] }).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('parseCommandLine', () => {
  it('gives the schema defaults and the runner defaults for a bare `train`', () => {
    const { config, runner } = train([]);
    expect(config).toEqual(parseRunConfig({}));
    expect(runner).toEqual({
      report: DEFAULT_REPORT,
      trace: undefined,
      exportModel: undefined,
      isolatedNetwork: false,
      oneProfile: false,
      chromium: DEFAULT_CHROMIUM,
      gpu: false,
      chromiumFlags: [],
      room: undefined,
      idleTimeoutMs: 120_000,
      dist: undefined,
      faults: [],
      quiet: false,
      verbose: false,
    });
  });

  it('--gpu and --chromium-flags reach the runner; an unclosed quote is an issue', () => {
    const { runner } = train(['--gpu', '--chromium-flags', '--use-gl=egl --user-agent="a b"']);
    expect(runner.gpu).toBe(true);
    expect(runner.chromiumFlags).toEqual(['--use-gl=egl', '--user-agent=a b']);
    expect(() => parseCommandLine(['train', '--chromium-flags', '--x="y'])).toThrow(ConfigError);
  });

  it('--schedule interleaved --virtual-stages 2 and --schedule zb-h1 reach the config', () => {
    const flags =
      '--strategy pipeline --model cnn --workers 2 --schedule interleaved --virtual-stages 2'.split(' ');
    expect(train(flags).config).toMatchObject({ schedule: 'interleaved', virtualStages: 2 });
    expect(train(['--strategy', 'pipeline', '--schedule', 'zb-h1']).config.schedule).toBe('zb-h1');
  });

  it('--compute thread|page reaches the runner (unset: the page decides); anything else is an issue', () => {
    expect(train(['--compute', 'thread']).runner.compute).toBe('thread');
    expect(train(['--compute', 'page']).runner.compute).toBe('page');
    expect(train([]).runner.compute).toBeUndefined();
    expect(() => train(['--compute', 'gpu'])).toThrow(/invalid options/);
  });

  it('--screenshot reaches the runner; without it none is taken', () => {
    expect(train(['--screenshot', 'out/dash.png']).runner.screenshot).toBe('out/dash.png');
    expect(train([]).runner.screenshot).toBeUndefined();
  });

  it('--checkpoint-dir checkpoints every 50 steps unless --checkpoint-every says otherwise; --resume reaches the runner', () => {
    const a = train(['--checkpoint-dir', 'ck', '--resume', 'old']);
    expect(a.config.checkpointEvery).toBe(50);
    expect(a.runner).toMatchObject({ checkpointDir: 'ck', resume: 'old' });
    expect(train(['--checkpoint-dir', 'ck', '--checkpoint-every', '30']).config.checkpointEvery).toBe(30);
    expect(train([]).config.checkpointEvery).toBe(0);
    expect(issuesOf(['train', '--checkpoint-dir', 'ck', '--sync', 'diloco'])).toEqual([
      expect.stringMatching(/^--checkpoint-every: checkpoints cover data parallel/),
    ]);
  });

  it('--elastic turns elastic epochs on; --elastic-policy picks what they keep', () => {
    expect(train(['--elastic']).config.elastic).toBe(true);
    expect(train([]).config.elastic).toBe(false);
    expect(train(['--elastic']).config.elasticPolicy).toBe('fixed-global');
    expect(train(['--elastic', '--elastic-policy', 'scaled-lr']).config.elasticPolicy).toBe('scaled-lr');
    expect(issuesOf(['train', '--elastic-policy', 'scaled-lr'])).toEqual([
      '--elastic-policy: elastic policy scaled-lr applies to elastic runs',
    ]);
    expect(issuesOf(['train', '--elastic', '--elastic-policy', 'wild'])[0]).toMatch(/^--elastic-policy: /);
  });

  it('--all-reduce forces how a fp32 all-reduce sums; auto by default', () => {
    expect(train([]).config.allReduce).toBe('auto');
    expect(train(['--all-reduce', 'ring']).config.allReduce).toBe('ring');
    expect(issuesOf(['train', '--all-reduce', 'tree'])[0]).toMatch(/^--all-reduce: /);
  });

  it('--spares and --stage-checkpoint-every: an elastic pipeline’s spares and snapshots; vanish-rankR@K', () => {
    const pipe = ['--strategy', 'pipeline', '--workers', '5', '--elastic', '--partition', '0-2,3-3,4-5,6-7'];
    const { config, runner } = train([
      ...pipe,
      '--model',
      'cnn',
      '--spares',
      '1',
      '--stage-checkpoint-every',
      '5',
      '--inject-fault',
      'vanish-rank2@12',
    ]);
    expect([config.spares, config.stageCheckpointEvery]).toEqual([1, 5]);
    expect(runner.faults).toEqual(['vanish-rank2@12']);
    expect(issuesOf(['train', '--spares', '1'])).toEqual([
      '--spares: spares apply to elastic pipelines (strategy pipeline, elastic)',
    ]);
  });

  it('--heartbeat-timeout SEC sets the heartbeat timeout in ms (0.5 to 600 s)', () => {
    expect(train([]).config.heartbeatTimeoutMs).toBe(10_000);
    expect(train(['--heartbeat-timeout', '5']).config.heartbeatTimeoutMs).toBe(5000);
    expect(train(['--heartbeat-timeout', '2.5']).config.heartbeatTimeoutMs).toBe(2500);
    expect(issuesOf(['train', '--heartbeat-timeout', '0.1'])).toEqual([
      '--heartbeat-timeout: expected 0.5 to 600 seconds, got 0.1',
    ]);
    expect(issuesOf(['train', '--heartbeat-timeout', 'soon'])[0]).toMatch(
      /^--heartbeat-timeout: expected a number/,
    );
  });

  it('reads --chaos into a ChaosSpec, checked against the run’s size', () => {
    const { runner } = train(['--workers', '4', '--elastic', '--chaos', 'kill=1,freeze=1:15s,seed=7']);
    expect(runner.chaos).toEqual({
      kill: 1,
      freeze: { count: 1, durationMs: 15_000 },
      slow: null,
      hide: 0,
      seed: 7,
      steps: null,
    });
    expect(train([]).runner.chaos).toBeUndefined();
    expect(issuesOf(['train', '--chaos', 'kill=1,zap=2'])).toEqual([
      '--chaos "zap": unknown key (expected kill, freeze, slow, hide, seed, steps)',
    ]);
    expect(issuesOf(['train', '--workers', '2', '--chaos', 'kill=2'])).toEqual([
      '--chaos kill=2: 2 workers have 1 to kill (rank 0 stays)',
    ]);
  });

  it('maps every option onto the run config', () => {
    const { config, runner } = train(
      (
        '--workers 4 --strategy data --sync ps --model cnn --dataset synthetic --steps 10 --batch 16 --lr 0.1 ' +
        '--optimizer sgd --momentum 0.5 --seed 7 --backend webgpu --eval-every 5 --bucket-elems 1024 --all-reduce ring --reference ' +
        '--report out.json --isolated-network --chromium /opt/chrome --room lab-1 --idle-timeout 2.5 --dist build ' +
        '--inject-fault malformed --quiet'
      ).split(' '),
    );
    expect(config).toEqual({
      strategy: 'data',
      sync: 'ps',
      model: 'cnn',
      dataset: 'synthetic',
      workers: 4,
      steps: 10,
      batch: 16,
      lr: 0.1,
      optimizer: { kind: 'sgd', momentum: 0.5 },
      seed: 7,
      backend: 'webgpu',
      bucketElems: 1024,
      allReduce: 'ring',
      evalEvery: 5,
      reference: true,
      // pipeline settings keep their defaults in a data-parallel run
      schedule: '1f1b',
      microBatches: 1,
      virtualStages: 1,
      recompute: false,
      activationCompress: 'none',
      activationSkipZeros: true,
      partition: 'auto',
      spares: 0,
      stageCheckpointEvery: 10,
      replicas: 1,
      // communication-efficient methods keep their defaults too
      innerSteps: 20,
      outerLr: 0.7,
      outerMomentum: 0.9,
      outerNesterov: true,
      overlapOuter: false,
      fillWaits: false,
      overlap: false,
      staleness: 2,
      psShards: 1,
      compress: 'none',
      elastic: false,
      checkpointEvery: 0,
      elasticPolicy: 'fixed-global',
      heartbeatTimeoutMs: 10_000,
    });
    expect(runner).toMatchObject({
      report: 'out.json',
      isolatedNetwork: true,
      oneProfile: false,
      chromium: '/opt/chrome',
      room: 'lab-1',
      idleTimeoutMs: 2500,
      dist: 'build',
      faults: ['malformed'],
      quiet: true,
    });
  });

  it('maps the communication-efficient options', () => {
    const { config } = train(
      (
        '--sync diloco --inner-steps 10 --outer-lr 1 --outer-momentum 0 --no-outer-nesterov --overlap-outer ' +
        '--fill-waits --fill-max 200 --compress topk:0.01 --target-accuracy 0.92'
      ).split(' '),
    );
    expect(config).toMatchObject({
      sync: 'diloco',
      innerSteps: 10,
      outerLr: 1,
      outerMomentum: 0,
      outerNesterov: false,
      overlapOuter: true,
      fillWaits: true,
      fillMax: 200,
      compress: 'topk:0.01',
      targetAccuracy: 0.92,
    });
    expect(() => train(['--fill-waits'])).toThrow(/fillWaits applies to/);
    expect(() => train('--sync diloco --overlap-outer --fill-max 50'.split(' '))).toThrow(
      /fillMax applies with fillWaits/,
    );
    expect(train(['--overlap']).config.overlap).toBe(true);
    expect(train([]).config.overlap).toBe(false);
    expect(train('--sync ps-async --staleness 4 --ps-shards 2'.split(' ')).config).toMatchObject({
      sync: 'ps-async',
      staleness: 4,
      psShards: 2,
    });
    expect(() => train('--compress int3 --inner-steps 0'.split(' '))).toThrow(/invalid options/);
  });

  it('maps the pipeline and hybrid options', () => {
    const pipe = train(
      '--strategy pipeline --workers 4 --model cnn --micro-batches 8 --schedule gpipe --recompute --activation-compress fp16 --no-skip-zeros --partition 0-1,2-3,4-5,6-7 --trace t.json'.split(
        ' ',
      ),
    );
    expect(pipe.config).toMatchObject({
      strategy: 'pipeline',
      workers: 4,
      microBatches: 8,
      schedule: 'gpipe',
      recompute: true,
      activationCompress: 'fp16',
      activationSkipZeros: false,
      partition: '0-1,2-3,4-5,6-7',
      batch: 128,
    });
    expect(pipe.runner.trace).toBe('t.json');
    expect(train('--strategy hybrid --replicas 2 --workers 4'.split(' ')).config).toMatchObject({
      replicas: 2,
      microBatches: 8,
    });
    expect(() => train('--strategy hybrid --replicas 3 --workers 4'.split(' '))).toThrow(/replicas/);
    expect(() => train('--strategy pipeline --schedule naive --micro-batches 4'.split(' '))).toThrow(
      /--micro-batches: naive/,
    );
    // A partition is checked against the model's layers here, before any browser starts.
    expect(() => train('--strategy pipeline --workers 2 --model cnn --partition 0-2,4-7'.split(' '))).toThrow(
      /--partition: stage 1 starts at layer 4, not 3 \(ranges must be contiguous\)/,
    );
  });

  it('keeps the default momentum for a bare --optimizer sgd, implies sgd from --momentum', () => {
    const defaults = parseRunConfig({}).optimizer;
    expect(train(['--optimizer', 'sgd']).config.optimizer).toEqual(defaults);
    expect(train(['--momentum', '0']).config.optimizer).toEqual({ kind: 'sgd', momentum: 0 });
    expect(train(['--optimizer', 'adam']).config.optimizer).toMatchObject({ kind: 'adam', beta1: 0.9 });
  });

  it('accepts --opt=value and answers help', () => {
    expect(train(['--steps=12']).config.steps).toBe(12);
    expect(parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['train', '-h'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['help'])).toEqual({ kind: 'help' });
  });

  it('lists every problem at once, with flags as the user typed them', () => {
    // prettier-ignore
    const argv = [
      'train', '--steps', '12abc', '--workers', '0', '--sync', 'ring', '--optimizer', 'adam', '--momentum', '0.5',
      '--eval-every=-1', '--inject-fault', 'sluggish', '--room', 'a b', '--idle-timeout', '0', '--lr', '',
    ];
    expect(issuesOf(argv)).toEqual([
      '--steps: expected a number, got "12abc"',
      '--lr: expected a number, got ""',
      '--momentum applies only to --optimizer sgd',
      '--inject-fault: expected one of malformed, vanish, vanish-rank0, vanish-rankR@K, slow, join@K, got "sluggish"',
      '--idle-timeout: must be positive',
      '--room: up to 64 letters and digits, optionally joined by single - or _',
      '--sync: Invalid option: expected one of "allreduce"|"ps"|"diloco"|"ps-async"',
      '--workers: Too small: expected number to be >=1',
      '--eval-every: Too small: expected number to be >=0',
    ]);
    expect(issuesOf(['train', '--batch', '1.5'])).toEqual([
      '--batch: Invalid input: expected int, received number',
    ]);
    expect(issuesOf(['train', '--optimizer', 'rmsprop'])).toEqual([
      '--optimizer: expected sgd or adam, got "rmsprop"',
    ]);
    expect(issuesOf(['train', '--quiet', '--verbose'])).toEqual(['--quiet and --verbose exclude each other']);
  });

  it('reads --link into a LinkSpec and names a bad one', () => {
    expect(train(['--link', 'rate=20mbit,loss=2%,delay=40ms']).runner.link).toEqual({
      rateBitsPerSecond: 20e6,
      lossPercent: 2,
      delayMs: 40,
    });
    expect(train([]).runner.link).toBeUndefined();
    expect(() => train(['--link', 'loss=2'])).toThrow(/--link loss=2: expected a percentage/);
  });

  it('refuses unknown options, commands and stray arguments', () => {
    expect(issuesOf(['train', '--bogus'])).toEqual(["Unknown option '--bogus'"]);
    expect(issuesOf(['train', '--steps'])[0]).toMatch(/--steps/);
    expect(issuesOf([])).toEqual(['expected `peertrain train [options]`']);
    expect(issuesOf(['fly'])).toEqual(['fly (expected train)']);
    expect(issuesOf(['train', 'now'])).toEqual(['now']);
  });
});
