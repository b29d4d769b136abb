import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChromeTrace } from '@peertrain/protocol';
import { useTrainCli } from './train-cli.fixture.ts';

// An elastic pipeline end to end: 4 1F1B stages and 1 spare in real Chromium tabs over WebRTC.
// Stage 2's tab closes mid-run; the spare takes its layers, every stage rolls back to the newest
// complete stage snapshot and redoes from there, and the run is the undisturbed run's, step by step.
// The CNN at lr 0.1 is chaotic over long runs (pipeline.e2e.test.ts: summation-order differences
// reach 1e-2 within 15 steps; at 10 steps this run was 2.1e-4 from the reference, as the undisturbed
// pipeline is), so the run is 6 steps, not 30, for the reference's 1e-4.
// The tab closes (its links close): the heartbeat is not what this test is about, and on a loaded
// CI machine two live stages were once dropped by it with no spare left (10 s, the default), so it
// is 30 s here; a stage that really hangs still fails the run at the step timeout.

const cli = useTrainCli();

const args = [
  ...['--strategy', 'pipeline', '--workers', '5', '--spares', '1', '--elastic'],
  ...['--model', 'cnn', '--dataset', 'mnist', '--backend', 'wasm', '--micro-batches', '8'],
  ...['--partition', '0-2,3-3,4-5,6-7', '--steps', '6', '--stage-checkpoint-every', '2', '--reference'],
  ...['--eval-every', '0', '--heartbeat-timeout', '30'],
];

describe('elastic pipeline in real Chromium over WebRTC', () => {
  it('4 stages + 1 spare: losing stage 2 after step 2, the spare takes it and the run is the undisturbed one', async () => {
    const trace = join(cli.dir(), 'trace-elastic.json');
    const hit = await cli.train([...args, '--trace', trace, '--inject-fault', 'vanish-rank2@2']);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(6).keys()]);
    expect(r.membershipChanges).toEqual([expect.objectContaining({ peerId: r.workers[2]!.peerId })]);
    expect(r.membershipChanges![0]!.step % 2).toBe(0); // a snapshot step
    expect(r.redoneSteps).toBeGreaterThanOrEqual(1);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    const spans = parseChromeTrace(JSON.parse(await readFile(trace, 'utf8'))).traceEvents;
    expect(spans.filter((e) => e.ph === 'X' && e.name === 'recovery')).toHaveLength(1);

    const calm = await cli.train(args);
    expect(calm.code, calm.stderr).toBe(0);
    const c = calm.report!;
    expect(c.membershipChanges).toEqual([]);
    // The same stages on the same backend: every step's loss and the distance to the reference agree.
    r.loss.forEach((l, i) => expect(l.loss).toBeCloseTo(c.loss[i]!.loss, 6));
    expect(Math.abs(r.reference!.maxRelDiff - c.reference!.maxRelDiff)).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(r.testAccuracy - c.testAccuracy)).toBeLessThanOrEqual(0.005);
  });
});
