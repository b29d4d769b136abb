import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@peertrain/harness';
import { useTrainCli } from './train-cli.fixture.ts';

// Peers that leave, arrive or crash, end to end: `peertrain train --elastic`, `--chaos` and
// `--resume` in real Chromium tabs over real WebRTC. Every run is checked against the run it must
// equal: the single-worker reference on the same global batches, or the run never stopped.

const cli = useTrainCli();
const train = cli.train;

/** max |a - b| over the weights of two exported models (`--export-model` directories). */
async function weightsDiff(dirA: string, dirB: string): Promise<number> {
  const a = new Float32Array(new Uint8Array(await readFile(join(dirA, 'weights.bin'))).buffer);
  const b = new Float32Array(new Uint8Array(await readFile(join(dirB, 'weights.bin'))).buffer);
  expect(a.length).toBe(b.length);
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
  return maxAbs;
}

/**
 * These runs lose tabs that close (their links close at once) or gain one; none is about silence
 * (freeze.e2e is). A loaded machine has held live tabs silent past the 10 s default and the
 * watchdog dropped them (a membership change more than the test expects): 30 s here.
 */
const HEARTBEAT = ['--heartbeat-timeout', '30'];

/** The coordinator's lines about who left, came or was dropped, and why: for a failure's message. */
function membershipLog(run: { stderr: string }): string {
  const said = /dropped|joined|left|lost|closed|speaks again|own view|did not run|epoch/;
  return run.stderr
    .split('\n')
    .filter((l) => said.test(l))
    .join('\n');
}

describe('elastic data parallelism and resume in real Chromium over WebRTC', () => {
  // Elastic runs that lose rank 0 or gain a worker: each run trains the single-worker reference on
  // the same global batches, and its leader's parameters must equal it within 1e-5.
  const elastic = ['--workers', '3', '--sync', 'allreduce', '--model', 'mlp', '--dataset', 'mnist'];
  const elasticRun = [
    ...['--steps', '40', '--backend', 'wasm', '--elastic', '--reference', '--eval-every', '10'],
    ...HEARTBEAT,
  ];

  it('--elastic: losing rank 0 mid-run, the lowest surviving rank evaluates and hands back the model', async () => {
    const hit = await train([...elastic, ...elasticRun, '--inject-fault', 'vanish-rank0']);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(40).keys()]);
    expect(r.membershipChanges, membershipLog(hit)).toHaveLength(1);
    expect(r.membershipChanges![0]!.peerId).toBe(r.workers[0]!.peerId);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    expect(r.testAccuracy).toBeGreaterThan(0.5);
  });

  it('--elastic: a worker joining at step 20 contributes from there; the run equals the reference', async () => {
    // The dashboard at the end, its peer table saying "joined at step 20" (look at it).
    const shot = join(REPO_ROOT, '.artifacts/screenshots/dashboard-join.png');
    await rm(shot, { force: true });
    const hit = await train([...elastic, ...elasticRun, '--inject-fault', 'join@20', '--screenshot', shot]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(40).keys()]);
    expect(r.membershipChanges, membershipLog(hit)).toEqual([
      expect.objectContaining({ step: 20, cause: 'joined' }),
    ]);
    // The joiner is listed after the original ranks, at the rank it took.
    expect(r.workers.map((w) => w.peerId)).toHaveLength(r.config.workers + 1);
    expect(r.workers.at(-1)).toMatchObject({
      peerId: r.membershipChanges![0]!.peerId,
      rank: r.config.workers,
    });
    // The joiner reported its links once the epoch linked it (each tab its own profile: WebRTC).
    expect(r.workers.at(-1)!.links?.webrtc).toBeGreaterThanOrEqual(1);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    const png = await readFile(shot);
    expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
  });

  it('--resume from the checkpoint at step 30 of 59 ends with the parameters of the run never stopped', async () => {
    // The uninterrupted run checkpoints at step 30 (the only multiple of 30 before its end); the
    // resumed run starts there and must end where it ended.
    const common = [
      '--workers',
      '2',
      '--model',
      'mlp',
      '--dataset',
      'mnist',
      '--backend',
      'wasm',
      '--steps',
      '59',
    ];
    const ck = join(cli.dir(), 'checkpoints');
    const [whole, resumedModel] = [join(cli.dir(), 'model-whole'), join(cli.dir(), 'model-resumed')];
    const uninterrupted = await train([
      ...common,
      ...['--checkpoint-dir', ck, '--checkpoint-every', '30', '--export-model', whole],
    ]);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
    const resumed = await train([...common, '--resume', ck, '--export-model', resumedModel]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.report!.loss.map((l) => l.step)).toEqual(Array.from({ length: 29 }, (_, i) => 30 + i));
    expect(await weightsDiff(resumedModel, whole)).toBeLessThanOrEqual(1e-6);
    // Another model's run refuses the checkpoint by name before a browser starts.
    const other = await train(['--workers', '2', '--model', 'cnn', '--steps', '60', '--resume', ck]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/CheckpointError: .*model: checkpoint "mlp", run "cnn"/);
  });

  it('--elastic --sync diloco: a tab closed mid-run costs a round; the run ends where the undisturbed one does', async () => {
    // Plain SGD inside (--momentum 0), so the survivors can run the lost rank's inner steps exactly.
    const diloco =
      '--workers 3 --model mlp --dataset mnist --steps 40 --backend wasm --seed 7 --eval-every 0';
    const local = [...'--sync diloco --inner-steps 5 --momentum 0 --elastic'.split(' '), ...HEARTBEAT];
    const [calmDir, hitDir] = [join(cli.dir(), 'diloco-calm'), join(cli.dir(), 'diloco-hit')];
    const calm = await train([...diloco.split(' '), ...local, '--export-model', calmDir]);
    expect(calm.code, calm.stderr).toBe(0);
    const hit = await train([
      ...diloco.split(' '),
      ...local,
      ...['--inject-fault', 'vanish-rank1@12', '--export-model', hitDir],
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(40).keys()]);
    expect(r.membershipChanges, membershipLog(hit)).toHaveLength(1);
    expect(r.membershipChanges![0]!.peerId).toBe(r.workers[1]!.peerId);
    expect(r.membershipChanges![0]!.step % 5).toBe(0); // the epoch redoes a whole round
    // Rank 2 ran rank 1's inner steps too: the same outer steps, up to float32 summation order.
    expect(await weightsDiff(hitDir, calmDir)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(r.testAccuracy - calm.report!.testAccuracy)).toBeLessThanOrEqual(0.002);
  });

  it('--elastic --sync ps-async: a worker closed mid-run is dropped; the others finish every step', async () => {
    const hit = await train([
      ...'--workers 3 --model mlp --dataset mnist --steps 60 --backend wasm --seed 7 --eval-every 20'.split(
        ' ',
      ),
      ...'--sync ps-async --staleness 2 --momentum 0.5 --elastic --inject-fault vanish-rank2@10'.split(' '),
      ...HEARTBEAT,
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    expect(r.loss.map((l) => l.step)).toEqual([...Array(60).keys()]);
    expect(r.membershipChanges, membershipLog(hit)).toEqual([
      expect.objectContaining({ peerId: r.workers[2]!.peerId }),
    ]);
    // Every step from the loss on passed the barrier on the survivors' reports alone.
    expect(r.membershipChanges![0]!.step).toBeGreaterThanOrEqual(10);
    expect(r.membershipChanges![0]!.step).toBeLessThan(60);
    expect(r.testAccuracy).toBeGreaterThan(0.8);
  });

  it('--chaos kill=1 --elastic: a seeded kill finishes every step and equals the reference (the undisturbed run)', async () => {
    // 4 workers, 20 steps, evaluated only at the end. The elastic run keeps the global batch, so it
    // must equal the single-worker reference on the same batches (which the undisturbed run equals).
    const hit = await train([
      ...'--workers 4 --model mlp --dataset mnist --steps 20 --backend wasm --elastic --seed 7'.split(' '),
      // steps=3-15: the kill lands mid-run, whatever step the seed draws.
      ...['--eval-every', '0', '--reference', '--chaos', 'kill=1,seed=3,steps=3-15'],
      ...HEARTBEAT,
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const r = hit.report!;
    const chaos = r.harness.chaos!;
    expect(chaos.spec).toBe('kill=1,seed=3,steps=3-15');
    expect(chaos.actions).toHaveLength(1);
    expect(chaos.actions[0]!.outcome).toBe('tab closed');
    expect(r.loss.map((l) => l.step)).toEqual([...Array(20).keys()]);
    expect(r.membershipChanges, membershipLog(hit)).toHaveLength(1);
    expect(r.membershipChanges![0]!.peerId).toBe(r.workers[chaos.actions[0]!.rank]!.peerId);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
  });
});
