import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChromeTrace } from '@peertrain/protocol';
import { useTrainCli } from './train-cli.fixture.ts';

// An elastic pipeline end to end: 4 1F1B stages and 1 spare in real Chromium tabs over WebRTC.
// Stage 2's tab closes mid-run; the spare takes its layers, every stage rolls back to the newest
// complete stage snapshot and redoes from there, and the run equals the single-worker reference.
// The CNN at lr 0.1 is chaotic over long runs (pipeline.e2e.test.ts: summation-order differences
// reach 1e-2 within 15 steps), so the run is 10 steps, not 30: the recovery is what is tested,
// and in-memory (worker-runtime pipeline-elastic.test.ts) it equals the undisturbed run bit for bit.

const cli = useTrainCli();

describe('elastic pipeline in real Chromium over WebRTC', () => {
  it('4 stages + 1 spare: losing stage 2 after step 4, the spare takes it and the run equals the reference', async () => {
    const trace = join(cli.dir(), 'trace-elastic.json');
    const run = await cli.train([
      ...['--strategy', 'pipeline', '--workers', '5', '--spares', '1', '--elastic'],
      ...['--model', 'cnn', '--dataset', 'mnist', '--backend', 'wasm', '--micro-batches', '8'],
      ...['--partition', '0-2,3-3,4-5,6-7', '--steps', '10', '--stage-checkpoint-every', '3', '--reference'],
      ...['--eval-every', '0', '--trace', trace, '--inject-fault', 'vanish-rank2@4'],
    ]);
    expect(run.code, run.stderr).toBe(0);
    const r = run.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(10).keys()]);
    expect(r.membershipChanges).toEqual([expect.objectContaining({ peerId: r.workers[2]!.peerId })]);
    expect(r.membershipChanges![0]!.step % 3).toBe(0); // a snapshot step
    expect(r.redoneSteps).toBeGreaterThanOrEqual(1);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    const spans = parseChromeTrace(JSON.parse(await readFile(trace, 'utf8'))).traceEvents;
    expect(spans.filter((e) => e.ph === 'X' && e.name === 'recovery')).toHaveLength(1);
  });
});
