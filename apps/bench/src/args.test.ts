import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { DEFAULT_CHROMIUM } from '@peertrain/harness';
import { parseArgs, settingsFor } from './args.ts';

describe('parseArgs', () => {
  it('defaults to every part, full size', () => {
    expect(parseArgs([])).toEqual({
      quick: false,
      parts: ['raw', 'allreduce', 'train', 'pipeline', 'dashboard', 'gpu'],
      outDir: null,
      pipelineSteps: null,
      link: null,
      scalingQuick: false,
      scalingCompression: false,
      scalingMethods: null,
      oneProfile: false,
      help: false,
      chromium: { executablePath: DEFAULT_CHROMIUM, gpu: false, flags: [] },
    });
  });

  it('reads --quick, --only (in run order) and --out', () => {
    expect(parseArgs(['--quick', '--only', 'train,raw', '--out=/tmp/x'])).toEqual({
      quick: true,
      parts: ['raw', 'train'],
      outDir: '/tmp/x',
      pipelineSteps: null,
      link: null,
      scalingQuick: false,
      scalingCompression: false,
      scalingMethods: null,
      oneProfile: false,
      help: false,
      chromium: { executablePath: DEFAULT_CHROMIUM, gpu: false, flags: [] },
    });
  });

  it('--one-profile: recorded in the settings and the results name', () => {
    const a = parseArgs(['--only', 'scaling', '--scaling-quick', '--one-profile']);
    expect(a.oneProfile).toBe(true);
    expect(settingsFor(a).oneProfile).toBe(true);
    expect(settingsFor(parseArgs(['--only', 'scaling'])).oneProfile).toBeUndefined();
  });

  it('selects the pipeline part alone and its step count', () => {
    expect(parseArgs(['--only=pipeline', '--pipeline-steps', '8'])).toMatchObject({
      parts: ['pipeline'],
      pipelineSteps: 8,
    });
    expect(settingsFor(parseArgs(['--only=pipeline', '--pipeline-steps=8'])).pipeline.steps).toBe(8);
  });

  it('reads --link, and refuses a bad one', () => {
    expect(parseArgs(['--link', 'rate=20mbit,loss=2%']).link).toEqual({
      rateBitsPerSecond: 20e6,
      lossPercent: 2,
    });
    expect(parseArgs(['--link=delay=40ms']).link).toEqual({ delayMs: 40 });
    expect(() => parseArgs(['--link', 'rate=fast'])).toThrow(/--link rate=fast/);
  });

  it('runs the links part only when named, with its quick sizes, and never under --link', () => {
    expect(parseArgs([]).parts).not.toContain('links');
    const quick = settingsFor(parseArgs(['--quick', '--only', 'links']));
    expect(quick.parts).toEqual(['links']);
    expect(quick.links?.cases.map((c) => c.config.steps)).toEqual([10, 20, 6]);
    expect(() => parseArgs(['--only', 'links', '--link', 'loss=2%'])).toThrow(ConfigError);
  });

  it('reads --gpu, --chromium and --chromium-flags (repeatable, quotes kept together)', () => {
    const args = parseArgs([
      '--gpu',
      '--chromium',
      '/opt/chromium/headless_shell',
      '--chromium-flags',
      '--use-gl=egl --user-agent="a b"',
      '--chromium-flags=--enable-features=X',
    ]);
    expect(args.chromium).toEqual({
      executablePath: '/opt/chromium/headless_shell',
      gpu: true,
      flags: ['--use-gl=egl', '--user-agent=a b', '--enable-features=X'],
    });
    expect(() => parseArgs(['--chromium-flags', '--a="b'])).toThrow(/unclosed/);
    expect(() => parseArgs(['--chromium'])).toThrow(ConfigError);
  });

  it('lists every problem', () => {
    try {
      parseArgs(['--only', 'raw,tpu', '--frobnicate', '--pipeline-steps', '3', '--pipeline-steps=x']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        '--only: unknown part "tpu" (expected raw, allreduce, train, pipeline, dashboard, scaling, gpu, elastic, links, threads)',
        'unknown argument "--frobnicate"',
        '--pipeline-steps needs an integer of at least 4, got 3',
        '--pipeline-steps needs an integer of at least 4, got x',
      ]);
    }
  });
});

describe('settingsFor', () => {
  it('keeps S a whole number of float32 and the quick run smaller', () => {
    const full = settingsFor({ quick: false, parts: ['allreduce'] });
    const quick = settingsFor({ quick: true, parts: ['allreduce'] });
    expect(full.allReduceBytes % 4).toBe(0);
    expect(full.ns).toEqual([2, 3, 4]);
    expect(quick.allReduceBytes).toBeLessThan(full.allReduceBytes);
    expect(quick.rawBytes).toBeLessThan(full.rawBytes);
    expect(full.trainSteps).toBe(60);
  });

  it("runs the pipeline grid of the brief, past the coordinator's 3 warm-up steps", () => {
    const { pipeline } = settingsFor({ quick: false, parts: ['pipeline'] });
    expect(pipeline).toMatchObject({
      stages: [2, 3, 4],
      microBatches: [4, 8, 16],
      schedules: [
        { schedule: 'gpipe', virtualStages: 1 },
        { schedule: '1f1b', virtualStages: 1 },
        { schedule: 'interleaved', virtualStages: 2 },
        { schedule: 'zb-h1', virtualStages: 1 },
      ],
      compress: {
        model: 'cnn',
        stages: 4,
        microBatches: 8,
        steps: 120,
        variants: [
          { codec: 'none', skipZeros: false },
          { codec: 'fp16', skipZeros: false },
          { codec: 'none', skipZeros: true },
          { codec: 'fp16', skipZeros: true },
        ],
      },
      warmupSteps: 3,
      batch: 128,
      headline: { stages: 4, microBatches: 8 },
      recompute: [{ stages: 4, schedule: '1f1b', microBatches: 8 }],
    });
    expect(pipeline.steps).toBeGreaterThan(pipeline.warmupSteps);
    expect(pipeline.recomputeSteps).toBeGreaterThan(pipeline.steps);
    const quick = settingsFor({ quick: true, parts: ['pipeline'] }).pipeline;
    expect(quick).toMatchObject({ stages: [4], microBatches: [8], compress: { steps: 20 } });
  });
});

describe('the scaling part', () => {
  it('runs only when named, with its smoke check on --scaling-quick or --quick', () => {
    expect(parseArgs([]).parts).not.toContain('scaling');
    const a = parseArgs(['--only', 'scaling', '--scaling-quick']);
    expect(a).toMatchObject({ parts: ['scaling'], scalingQuick: true, quick: false });
    const quick = settingsFor(a).scaling;
    expect(quick).toMatchObject({ quick: true, tabs: [1, 3], methods: ['allreduce', 'diloco-20', 'int8'] });
    expect(quick.models.map((m) => m.model)).toEqual(['mlp']);
    expect(settingsFor({ quick: true, parts: ['scaling'] }).scaling.quick).toBe(true);
    const comp = settingsFor(parseArgs(['--only', 'scaling', '--scaling-compression'])).scaling;
    expect(comp).toMatchObject({ quick: false, tabs: [], methods: [], compressionOnly: true });
    expect(comp.compression).toMatchObject({
      tabs: 3,
      steps: 300,
      specs: ['none', 'fp16', 'int8', 'topk:0.01'],
    });
    const some = settingsFor(
      parseArgs(['--only', 'scaling', '--scaling-methods', 'diloco-20,diloco-20-fill']),
    );
    expect(some.scaling).toMatchObject({
      tabs: [1, 2, 3, 4],
      methods: ['diloco-20', 'diloco-20-fill'],
      compression: null,
      methodsOnly: true,
    });
    expect(() => parseArgs(['--scaling-methods', 'diloco-7'])).toThrow(ConfigError);
    const full = settingsFor(parseArgs(['--only=scaling'])).scaling;
    expect(full.methods).toContain('diloco-20-fill');
    expect(full.tabs).toEqual([1, 2, 3, 4]);
    expect(full.models.map((m) => [m.model, m.target])).toEqual([
      ['mlp', 0.92],
      ['cnn', 0.96],
    ]);
  });
});
