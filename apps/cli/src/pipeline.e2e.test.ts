import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChromeTrace } from '@peertrain/protocol';
import { schedule } from '@peertrain/schedules';
import * as tfl from '@tensorflow/tfjs';
import { activateBackend, loadExportedModel, loadMnist, tfjsModelArtifacts } from '@peertrain/engine';
import { useTrainCli } from './train-cli.fixture.ts';

// Pipeline parallelism end to end: `peertrain train --strategy pipeline|hybrid` cuts the model into
// stages across real Chromium tabs that pass activations and gradients over real WebRTC.
// Pipeline parallelism: the model cut into stages across tabs. The CNN at lr 0.1 is chaotic over
// long runs (a 6e-6 relative perturbation of the initial parameters grows to 1e-2 within 15 steps of
// the single-worker reference itself), so equivalence is checked over a few steps, where summation
// order is all that differs; accuracy over 100 steps.

const cli = useTrainCli();
// These runs are about schedules and equivalence, not silence (freeze.e2e tests the watchdog at
// 8 s): on a starved CI machine live stage tabs went 10 s without a word and the default watchdog
// failed the run (two tabs at once, 10334 and 10336 ms, mid-run).
const HEARTBEAT = ['--heartbeat-timeout', '30'];
const train = cli.train;

describe('pipeline parallelism in real Chromium over WebRTC', () => {
  // The order each stage computed in (from the trace) is the schedule generator's, step after step:
  // gpipe runs every forward of a step before its backwards, 1f1b alternates after a warm-up.
  function expectScheduleOrder(
    spans: { name: string; pid: number; ts?: number; args?: Record<string, unknown> }[],
    name: '1f1b' | 'gpipe',
    steps: number,
  ) {
    const expected = schedule(name, 4, 8).map((ops) =>
      ops
        .filter((op) => op.kind === 'forward' || op.kind === 'backward')
        .map((op) => `${op.kind === 'forward' ? 'F' : 'B'}${op.mb}`)
        .join(' '),
    );
    // Compute spans are named "forward 3" / "backward 3" (kind and micro-batch) with args.step.
    const kindOf = (e: { name: string }): string | null => {
      const kind = e.name.split(' ')[0];
      return kind === 'forward' || kind === 'backward' ? kind : null;
    };
    const seen: string[] = [];
    for (const pid of new Set(spans.map((e) => e.pid))) {
      const order = spans
        .filter((e) => e.pid === pid && kindOf(e) !== null)
        .sort((a, b) => Number(a.args?.step) - Number(b.args?.step) || (a.ts ?? 0) - (b.ts ?? 0))
        .map((e) => `${kindOf(e) === 'forward' ? 'F' : 'B'}${String(e.args?.microBatch)}`);
      expect(order.length).toBe(steps * 16);
      const firstStep = order.slice(0, 16).join(' ');
      expect(expected, `${name} order on pid ${pid}: ${firstStep}`).toContain(firstStep);
      expect(order.join(' ')).toBe(Array(steps).fill(firstStep).join(' '));
      seen.push(firstStep);
    }
    // One peer per stage: the orders seen are the stages' orders (GPipe's are all alike; 1F1B's
    // warm-up differs per stage).
    expect(seen.sort()).toEqual([...expected].sort());
  }

  async function pipelineRun(name: '1f1b' | 'gpipe', steps: number, extra: string[]) {
    const trace = join(cli.dir(), `trace-${name}.json`);
    // The cut is pinned: on this shared 2-core machine the tabs' layer profiles (the planner's
    // device speeds) are mostly noise, and a cut after a relu or the first conv moves 1.4-2x the
    // bytes of this one (5.6 MB a step), which made long runs 1.5x slower. The planner itself is
    // covered by its unit tests and by the auto-planned equivalence runs below.
    const run = await train([
      ...['--strategy', 'pipeline', '--workers', '4', '--micro-batches', '8', '--schedule', name],
      ...['--model', 'cnn', '--dataset', 'mnist', '--steps', String(steps), '--backend', 'wasm'],
      ...['--trace', trace, '--partition', '0-2,3-3,4-5,6-7', ...HEARTBEAT, ...extra],
    ]);
    expect(run.code, run.stderr).toBe(0);
    // Chrome trace event format: every complete event has ts, dur, pid, tid; one process per peer.
    const parsed = parseChromeTrace(JSON.parse(await readFile(trace, 'utf8')));
    const spans = parsed.traceEvents.filter((e) => e.ph === 'X');
    for (const e of spans) {
      expect(Number.isFinite(e.ts) && Number.isFinite(e.dur) && e.pid > 0 && e.tid > 0).toBe(true);
    }
    expect(new Set(spans.map((e) => e.pid)).size).toBe(4);
    expectScheduleOrder(spans, name, steps);
    return run.report!;
  }

  // One session checks both GPipe's order and its exactness (the auto-planned cut is the 1f1b
  // equivalence runs' below).
  it('gpipe: 4 stages x 8 micro-batches compute in the GPipe order, step after step (trace), and equal the reference', async () => {
    const r = await pipelineRun('gpipe', 3, ['--reference']);
    expect(r.pipeline!.bubbleTheory).toBeCloseTo(3 / 11, 10);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(r.reference!.referenceLoss - r.finalLoss)).toBeLessThan(1e-5);
  });

  // 60 steps, not 300: this run scored 0.920 at step 40, 0.933 at 50 (and one worker at batch 128
  // 0.952 at 100, 0.960 at 300); the pipeline's exactness is the equivalence runs' job.
  it('1f1b: 4 stages x 8 micro-batches train the MNIST CNN to >= 93% in 60 steps, in 1F1B order (trace), exported', async () => {
    const modelDir = join(cli.dir(), 'model-1f1b');
    const r = await pipelineRun('1f1b', 60, ['--export-model', modelDir]);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.93);
    const pl = r.pipeline!;
    expect(pl.stages).toBe(4);
    expect(pl.bubbleTheory).toBeCloseTo(3 / 11, 10);
    expect(pl.bubbleMeasured).toBeGreaterThan(0);
    expect(pl.perStage.map((st) => st.layers)).toEqual([
      [0, 2],
      [3, 3],
      [4, 5],
      [6, 7],
    ]);
    // The exported model (TensorFlow.js files) scores what the live run scored.
    const json = JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8')) as unknown;
    const weights = await readFile(join(modelDir, 'weights.bin'));
    await activateBackend('wasm');
    const data = await loadMnist();
    const loaded = loadExportedModel(json, weights);
    const ours = await loaded.model.evaluate(loaded.params, data.testX, data.testY);
    expect(Math.abs(ours.accuracy - r.testAccuracy)).toBeLessThanOrEqual(0.001);
    const keras = await tfl.loadLayersModel(
      tfl.io.fromMemory(tfjsModelArtifacts(loaded.model, loaded.params)),
    );
    const probs = keras.predict(tfl.tensor(data.testX, [data.testCount, 28, 28, 1])) as tfl.Tensor;
    const predicted = await probs.argMax(1).data();
    probs.dispose();
    keras.dispose();
    let hits = 0;
    for (let i = 0; i < data.testCount; i++) if (predicted[i] === data.testY[i]) hits++;
    expect(Math.abs(hits / data.testCount - r.testAccuracy)).toBeLessThanOrEqual(0.001);
  });

  /** A 4-tab CNN pipeline run of `steps` steps with --reference, equal to it within `tol`. */
  async function equalsReference(name: string, flags: string[], steps: number, tol: number) {
    const { code, stderr, report } = await train([
      ...['--strategy', 'pipeline', '--workers', '4', '--model', 'cnn', '--dataset', 'mnist'],
      ...['--steps', String(steps), '--backend', 'wasm', '--reference', ...HEARTBEAT, ...flags],
    ]);
    if (code !== 0) console.error(`${name}: peertrain exited ${code}:\n${stderr.slice(-3000)}`);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(tol);
    expect(Math.abs(r.reference!.referenceLoss - r.finalLoss)).toBeLessThan(tol);
    return r;
  }

  // Every schedule, with and without recomputation somewhere, equals the reference after 3 steps
  // within 1e-5, where summation order is all that differs (the CNN at lr 0.1 is chaotic over long
  // runs: 1e-2 apart within 15 steps). The 1f1b run with recompute and the zb-h1 one cover the
  // recompute memory rule; naive and gpipe with recompute are the in-memory unit tests' (worker-
  // runtime: pipeline.test.ts, pipeline-schedules.test.ts).
  const equivalence: [string, string[]][] = [
    ['1f1b', ['--schedule', '1f1b', '--micro-batches', '8']],
    ['1f1b + recompute', ['--schedule', '1f1b', '--micro-batches', '8', '--recompute']],
    ['hybrid R=2 P=2', ['--strategy', 'hybrid', '--replicas', '2', '--micro-batches', '4']],
    ['interleaved V=2', ['--schedule', 'interleaved', '--virtual-stages', '2', '--micro-batches', '8']],
    ['zb-h1 + recompute', ['--schedule', 'zb-h1', '--micro-batches', '8', '--recompute']],
  ];
  for (const [name, flags] of equivalence) {
    it(`${name}: equals the single-worker reference after 3 steps within 1e-5`, async () => {
      const r = await equalsReference(name, flags, 3, 1e-5);
      const stages = r.pipeline!.perStage;
      expect(stages).toHaveLength(flags.includes('hybrid') ? 2 : 4);
      // Peak activation memory is reported per stage; with recompute it is at most what the
      // stage would hold without (only each micro-batch's input is kept), and somewhere less (a
      // stage of reshapes only holds nothing either way).
      for (const st of stages)
        expect(st.peakActivationBytes).toBeLessThanOrEqual(st.peakActivationBytesNoRecompute);
      if (flags.includes('--recompute')) {
        expect(stages.some((st) => st.peakActivationBytes < st.peakActivationBytesNoRecompute)).toBe(true);
      }
    });
  }

  it('refuses a partition that does not cover the model, by name, before starting a browser', async () => {
    const { code, stderr, report } = await train([
      ...['--strategy', 'pipeline', '--workers', '2', '--model', 'cnn', '--dataset', 'synthetic'],
      ...['--steps', '2', '--partition', '0-2,4-7'],
    ]);
    expect(code, stderr).toBe(2); // a usage error: the options were refused
    expect(stderr).toContain('--partition: stage 1 starts at layer 4, not 3 (ranges must be contiguous)');
    expect(stderr).not.toContain('private network namespace');
    expect(report).toBeNull();
  });
});
