import { ConfigError, PhaseTimeoutError, parseRunConfig } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';
import { BrowserNotFoundError, BuildError, IsolatedNetworkError, SessionError } from '@peertrain/harness';
import { describe, expect, it } from 'vitest';
import { HELP } from './args.ts';
import { WebrtcUnavailableError, describeFailure, runCli } from './cli.ts';
import { formatSummary } from './report.ts';
import type { CliReport } from './report.ts';

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t), isTTY: false },
    },
  };
}

describe('runCli', () => {
  it('prints help on stdout and exits 0', async () => {
    const { out, io: streams } = io();
    expect(await runCli(['--help'], streams)).toBe(0);
    expect(out.stdout).toBe(HELP);
    expect(out.stderr).toBe('');
  });

  it('exits 2 with a one-line message and a hint on a bad command line', async () => {
    const { out, io: streams } = io();
    expect(await runCli(['train', '--workers', 'many'], streams)).toBe(2);
    expect(out.stderr).toBe(
      'peertrain: invalid options: --workers: expected a number, got "many"\n' +
        'hint: run `peertrain --help` for the options\n',
    );
    expect(out.stdout).toBe('');
  });

  it('exits 1 with the apt-get hint when Chromium is missing, before starting anything', async () => {
    const { out, io: streams } = io();
    expect(await runCli(['train', '--chromium', '/nonexistent/chromium'], streams)).toBe(1);
    expect(out.stderr).toBe(
      'peertrain: BrowserNotFoundError: Chromium not found at /nonexistent/chromium\n' +
        'hint: install Chromium with `apt-get install -y chromium`, or pass --chromium PATH\n',
    );
  });
});

describe('describeFailure', () => {
  it('maps errors to status, message and hint', () => {
    const outside = { isolated: false };
    expect(describeFailure(new ConfigError('invalid options', ['x']), outside)).toMatchObject({ code: 2 });
    expect(describeFailure(new AbortError('received SIGINT'), outside)).toEqual({
      code: 130,
      message: 'interrupted: received SIGINT',
    });
    expect(describeFailure(new IsolatedNetworkError('no'), outside).hint).toMatch(/root/);
    expect(describeFailure(new WebrtcUnavailableError('no'), outside).hint).toMatch(/--isolated-network/);
    expect(describeFailure(new BuildError('x'), outside).hint).toMatch(/npm run build/);
    expect(describeFailure(new BrowserNotFoundError('/x'), outside).hint).toMatch(
      /apt-get install -y chromium/,
    );
    const startup = new PhaseTimeoutError('startup (waiting for the dashboard and workers)', 1000);
    expect(describeFailure(startup, outside).hint).toMatch(/--isolated-network/);
    expect(describeFailure(startup, { isolated: true }).hint).toBeUndefined();
    expect(describeFailure(new SessionError({ name: 'PeerLostError', message: 'gone' }), outside)).toEqual({
      code: 1,
      message: 'SessionError: PeerLostError: gone',
    });
    expect(describeFailure('weird', outside)).toEqual({ code: 1, message: 'weird' });
  });
});

describe('formatSummary', () => {
  const report: CliReport = {
    config: parseRunConfig({ workers: 2, steps: 100, reference: true }),
    finalLoss: 0.25,
    testAccuracy: 0.9312,
    wallMs: 1,
    stepMsMedian: 12.34,
    computeMsMedian: 8,
    commMsMedian: 4,
    samplesPerSec: 5120.4,
    bytesSent: 2_500_000,
    workers: [
      {
        peerId: 'a',
        rank: 0,
        role: 'worker',
        backend: 'wasm',
        gflops: 17.25,
        bytesSent: 1_250_000,
        framesRefused: 0,
      },
      {
        peerId: 'b',
        rank: 1,
        role: 'worker',
        backend: 'webgl',
        gflops: 1,
        bytesSent: 1_250_000,
        framesRefused: 3,
      },
    ],
    loss: [],
    evals: [],
    reference: { maxAbsDiff: 1.5e-7, maxRelDiff: 3e-6, referenceLoss: 0.25 },
    errors: [{ name: 'ProtocolError', message: 'bad-magic: x' }],
    harness: {
      wallMs: 83_000,
      chromium: '156.0.1',
      isolated: true,
      room: 'r',
      node: 'v20',
      startedAt: '',
      faults: ['malformed'],
    },
  };
  it('summarises the report', () => {
    expect(formatSummary(report, '/tmp/r.json').split('\n')).toEqual([
      'peertrain: done in 1:23 (2 workers, data/allreduce, mlp on mnist, 100 steps, batch 32/worker, isolated network)',
      '  final loss      0.2500',
      '  test accuracy   93.12%',
      '  throughput      5120 samples/s (step median 12.3 ms: compute 8.0 ms, comm 4.0 ms)',
      '  bytes sent      2.5 MB',
      '  worker 0        worker, wasm 17.3 GFLOP/s, sent 1.3 MB',
      '  worker 1        worker, webgl 1.0 GFLOP/s, sent 1.3 MB, 3 frames refused',
      '  reference       max |diff| 1.50e-7 (relative 3.00e-6), reference loss 0.2500',
      '  errors          ProtocolError: bad-magic: x',
      '  report          /tmp/r.json',
      '  chromium        156.0.1',
      '',
    ]);
  });

  it('adds time to target, compute share, bytes per sample, staleness and compression when present', () => {
    const target = { accuracy: 0.92, reached: true, step: 120, timeToTargetMs: 4200 };
    const full: CliReport = {
      ...report,
      target: { ...target, samplesToTarget: 11_520, bytesToTarget: 12_300_000 },
      bytesPerSample: 1234,
      computeUtilization: 0.456,
      workers: report.workers.map((w, i) => ({ ...w, computeUtilization: [0.5, 0.412][i]! })),
      staleness: { bound: 2, mean: 1.25, max: 3, perWorker: [] },
      compression: { spec: 'int8', bytesRatio: 0.2512 },
    };
    const lines = formatSummary(full, '/tmp/r.json').split('\n');
    expect(lines.slice(2, 8)).toEqual([
      '  test accuracy   93.12%',
      '  target          92.00% reached at step 120 in 4.2 s (11520 samples, 12.3 MB)',
      '  throughput      5120 samples/s (step median 12.3 ms: compute 8.0 ms, comm 4.0 ms)',
      '  bytes sent      2.5 MB (1.2 kB/sample)',
      '  compute share   46% of step time (mean over workers)',
      '  worker 0        worker, wasm 17.3 GFLOP/s, sent 1.3 MB, compute 50%',
    ]);
    expect(lines).toContain(
      '  worker 1        worker, webgl 1.0 GFLOP/s, sent 1.3 MB, compute 41%, 3 frames refused',
    );
    expect(lines).toContain('  staleness       mean 1.25, max 3 versions');
    expect(lines).toContain('  compression     int8, 0.251x the fp32 bytes');
    const missed = { ...full, target: { ...full.target!, reached: false, step: null } };
    expect(formatSummary(missed, '').split('\n')[3]).toBe('  target          92.00% not reached');
  });

  it('names the schedule of a pipeline, with its chunks per peer when interleaved', () => {
    const pipe = (input: Parameters<typeof parseRunConfig>[0]): string =>
      formatSummary({ ...report, config: parseRunConfig(input) }, '').split('\n')[0]!;
    const base = { strategy: 'pipeline', workers: 4, microBatches: 8, model: 'wideMlp' } as const;
    expect(pipe({ ...base, schedule: '1f1b' })).toContain('(4 workers, pipeline 1f1b M=8, wideMlp');
    expect(pipe({ ...base, schedule: 'interleaved', virtualStages: 2 })).toContain(
      '(4 workers, pipeline interleaved V=2 M=8, wideMlp',
    );
  });

  /** The pipeline part of a 4-stage 1F1B report, as the summary reads it. */
  const pipelineReport = {
    schedule: '1f1b',
    stages: 4,
    replicas: 1,
    microBatches: 8,
    recompute: false,
    bubbleMeasured: 0.7,
    bubbleTheory: 0.273,
    perStage: [],
  } as unknown as NonNullable<CliReport['pipeline']>;

  it('says what crossed between pipeline stages a step, and in which format', () => {
    const pipeline = { ...pipelineReport, bytesBetweenStagesPerStep: 920_000 };
    const line = (extra: object): string | undefined =>
      formatSummary({ ...report, pipeline: { ...pipeline, ...extra } }, '')
        .split('\n')
        .find((l) => l.startsWith('  between stages'));
    expect(line({ activationCompress: 'none', activationSkipZeros: true })).toBe(
      '  between stages  920.0 kB a step (float32, zeros skipped)',
    );
    expect(line({ activationCompress: 'fp16', activationSkipZeros: false })).toBe(
      '  between stages  920.0 kB a step (fp16, every zero sent)',
    );
    expect(line({ activationCompress: 'int8', activationSkipZeros: true })).toBe(
      '  between stages  920.0 kB a step (int8, every zero sent)',
    );
    const { bytesBetweenStagesPerStep: _, ...without } = pipeline;
    expect(formatSummary({ ...report, pipeline: without }, '')).not.toContain('between stages');
  });

  it("says when a pipeline's stage tabs outnumbered the cores, and only then", () => {
    const pipeline = pipelineReport;
    const after = (cores: number | undefined, replicas = 1): string | undefined => {
      const harness = { ...report.harness, ...(cores !== undefined ? { cores } : {}) };
      const lines = formatSummary({ ...report, harness, pipeline: { ...pipeline, replicas } }, '').split(
        '\n',
      );
      return lines[lines.findIndex((l) => l.startsWith('  bubble')) + 1];
    };
    expect(after(2)).toBe(
      "                  (4 stage tabs shared this machine's 2 cores: the theory gives each a core;" +
        ' README "Pipeline schedules, measured")',
    );
    expect(after(4, 2)).toContain("(8 stage tabs shared this machine's 4 cores");
    expect(after(4)).not.toContain('cores');
    expect(after(undefined)).not.toContain('cores');
  });

  it('points a communication-bound synchronous run at local steps, and no other run', () => {
    const bound: CliReport = { ...report, computeMsMedian: 9, commMsMedian: 61 };
    const hint = formatSummary(bound, '')
      .split('\n')
      .filter((l) => l.startsWith('  hint'));
    expect(hint).toEqual([
      '  hint            communication was 87% of a step; local steps send far less: --sync diloco' +
        ' --inner-steps 10 --outer-lr 1 --outer-momentum 0 --compress int8 (README "Fewer bytes per sample")',
    ]);
    const none = (r: CliReport): boolean => !formatSummary(r, '').includes('  hint');
    expect(none({ ...bound, computeMsMedian: 70 })).toBe(true);
    expect(none({ ...bound, config: { ...bound.config, sync: 'diloco' } })).toBe(true);
    expect(none({ ...bound, config: { ...bound.config, workers: 1 } })).toBe(true);
  });
});
