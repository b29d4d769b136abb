import { describe, expect, it } from 'vitest';
import type { PartialReport } from './report.ts';
import { useTrainCli } from './train-cli.fixture.ts';

// The product end to end: `peertrain train` builds the real pages, starts our PeerJS server,
// opens the real dashboard (coordinator) and worker tabs in headless Chromium, and trains over
// real WebRTC data channels inside a private network namespace. Every distributed result is
// checked against the single-worker reference that rank 0 trains on the same global batches.
// Data parallelism here; peers leaving and joining in elastic.e2e.test.ts, pipelines in
// pipeline.e2e.test.ts.

const { train } = useTrainCli();

describe('data parallelism in real Chromium over WebRTC', () => {
  // One test, not two: the vanished run's steps are checked against this run's first steps (the
  // same configuration and seed), which saves a session of its own.
  it('ring all-reduce: 3 tabs train the MNIST MLP to >= 90% in 150 steps and equal the single-worker reference; a tab that vanishes from the same run fails it by name and keeps the steps done', async () => {
    const args = [
      '--workers',
      '3',
      '--sync',
      'allreduce',
      '--model',
      'mlp',
      '--dataset',
      'mnist',
      '--backend',
      'wasm',
    ];
    const { code, stderr, report } = await train([
      ...args,
      '--strategy',
      'data',
      '--steps',
      '150',
      '--reference',
    ]);
    expect(code, stderr).toBe(0);
    expect(report).not.toBeNull();
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(r.workers).toHaveLength(3);
    expect(r.workers.every((w) => w.backend === 'wasm' && w.gflops > 0)).toBe(true);
    // Each tab in a profile of its own (the default), as separate devices: every link is WebRTC.
    expect(r.workers.map((w) => w.links)).toEqual([{ webrtc: 2 }, { webrtc: 2 }, { webrtc: 2 }]);
    // All-reduce (pairwise at 3 tabs, as the ring): each worker sends 2(N-1)/N of the gradient bytes
    // per step (plus framing).
    const gradBytes = 4 * (784 * 128 + 128 + 128 * 10 + 10);
    const ideal = ((2 * 2) / 3) * gradBytes * 150;
    for (const w of r.workers) {
      expect(w.bytesSent).toBeGreaterThanOrEqual(ideal);
      expect(w.bytesSent).toBeLessThan(ideal * 1.02);
    }
    expect(r.loss).toHaveLength(150);
    expect(r.loss[149]!.loss).toBeLessThan(r.loss[0]!.loss);

    // The same run with a worker tab closing after step 3 (3 workers here; 4 in the chaos kill and
    // freeze runs of elastic.e2e and freeze.e2e, each checked against the reference).
    const lost = await train([...args, '--steps', '40', '--inject-fault', 'vanish']);
    expect(lost.code).not.toBe(0);
    expect(lost.stderr, lost.stderr).toMatch(/PeerLostError: peer pt-[a-z0-9]+-w-[a-z0-9]+ lost/);
    const partial = lost.report as unknown as PartialReport;
    expect(partial.failed).toBe(true);
    expect(partial.error.message).toContain('PeerLostError');
    // Those steps (and maybe one more in flight) are in the report, and are what the undisturbed
    // run above computed for them.
    expect(partial.loss.length).toBeGreaterThanOrEqual(3);
    expect(partial.loss.length).toBeLessThan(40);
    partial.loss.forEach((l, i) => {
      expect(l.step).toBe(i);
      expect(l.loss).toBeCloseTo(r.loss[i]!.loss, 4);
    });
  });

  // 40 steps: equal to the reference (single-worker SGD on the same global batches), it trains as
  // the ring run above does; what is its own is the server's role and the refused frame.
  it('parameter server: 3 tabs equal the reference after 40 steps and shrug off a malformed frame', async () => {
    const { code, stderr, report } = await train([
      ...['--workers', '3', '--strategy', 'data', '--sync', 'ps', '--model', 'mlp', '--dataset', 'mnist'],
      ...['--steps', '40', '--backend', 'wasm', '--reference', '--inject-fault', 'malformed'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    expect(r.testAccuracy).toBeGreaterThan(0.5);
    expect(r.workers.map((w) => w.role)).toEqual(['worker+server', 'worker', 'worker']);
    // The injected frame was refused by name on rank 0, and all 40 steps still ran.
    expect(r.workers[0]!.framesRefused).toBe(1);
    expect(r.errors.some((e) => e.name === 'ProtocolError')).toBe(true);
    expect(r.loss).toHaveLength(40);
  });

  // The engine in a dedicated Worker of each tab (compute-thread.ts): every gradient crosses a thread
  // boundary, layer by layer here (overlapped buckets), and the run still equals the reference.
  it('engine in a thread of its own (--compute thread): 3 tabs of overlapped all-reduce equal the reference after 40 steps', async () => {
    const { code, stderr, report } = await train([
      ...['--workers', '3', '--sync', 'allreduce', '--overlap', '--bucket-elems', '2048'],
      ...['--model', 'mlp', '--dataset', 'mnist', '--steps', '40', '--backend', 'wasm'],
      ...['--reference', '--compute', 'thread'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    expect(r.workers.map((w) => w.computeThread)).toEqual([true, true, true]);
    expect(r.loss).toHaveLength(40);
    expect(r.loss[39]!.loss).toBeLessThan(r.loss[0]!.loss);
  });

  it('exits non-zero with a named error on a bad configuration', async () => {
    const { code, stderr, report } = await train(['--workers', '0']);
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(/--workers: /);
    expect(report).toBeNull();
  });
});

describe('communication-efficient data parallelism in real Chromium over WebRTC', () => {
  const mlp = ['--workers', '3', '--model', 'mlp', '--dataset', 'mnist', '--backend', 'wasm'];
  // What a synchronous ring all-reduce of fp32 gradients sends per worker per step: 2(N-1)/N of them.
  const ringBytesPerStep = ((2 * 2) / 3) * 4 * (784 * 128 + 128 + 128 * 10 + 10);

  it('diloco with H = 1, outer lr 1, no momentum is synchronous data parallelism (the reference)', async () => {
    const { code, stderr, report } = await train([
      ...mlp,
      ...['--sync', 'diloco', '--inner-steps', '1', '--outer-lr', '1', '--outer-momentum', '0'],
      ...['--steps', '6', '--reference'],
    ]);
    expect(code, stderr).toBe(0);
    expect(report!.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
  });

  it('diloco (local SGD, H = 10) stops at the target accuracy, sending a tenth of the bytes', async () => {
    const { code, stderr, report } = await train([
      ...mlp,
      ...['--sync', 'diloco', '--inner-steps', '10', '--outer-lr', '1', '--outer-momentum', '0'],
      ...['--steps', '400', '--eval-every', '10', '--target-accuracy', '0.92'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.target!.reached).toBe(true);
    expect(r.target!.step!).toBeLessThan(400);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.92);
    expect(r.loss).toHaveLength(r.target!.step!);
    // One exchange per round of 10 steps (and the run's last step): about a tenth of sync's bytes.
    for (const w of r.workers) expect(w.bytesSent).toBeLessThan((ringBytesPerStep * r.target!.step!) / 8);
    expect(r.bytesPerSample!).toBeGreaterThan(0);
  });

  it('diloco filling its waits: with one tab slowed 3x the others take extra inner steps instead of idling', async () => {
    const { code, stderr, report } = await train([
      ...mlp,
      ...['--sync', 'diloco', '--inner-steps', '10', '--overlap-outer', '--fill-waits'],
      ...['--outer-momentum', '0.5', '--steps', '200', '--inject-fault', 'slow'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.9);
    const extra = (rank: number) => r.workers.find((w) => w.rank === rank)!.extraSamples ?? 0;
    // Ranks 0 and 1 end their rounds long before the slowed rank 2 and fill the wait (at most a
    // round's 10 steps of 32 samples at each of the 19 round ends that have an exchange in flight);
    // rank 2 finds the exchange done when it gets there.
    for (const rank of [0, 1]) {
      expect(extra(rank)).toBeGreaterThan(0);
      expect(extra(rank)).toBeLessThanOrEqual(19 * 10 * 32);
      expect(extra(rank)).toBeGreaterThan(2 * extra(2));
    }
  });

  it('int8 exchange: 3 tabs reach >= 90% in 150 steps sending at most 0.26x the fp32 ring bytes', async () => {
    const { code, stderr, report } = await train([
      ...mlp,
      ...['--sync', 'allreduce', '--compress', 'int8', '--steps', '150'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(r.compression?.spec).toBe('int8');
    for (const w of r.workers) expect(w.bytesSent).toBeLessThanOrEqual(0.26 * ringBytesPerStep * 150);
  });

  it('asynchronous parameter server: a worker slowed 3x spends its steps computing; the run still trains', async () => {
    // Asynchrony acts as momentum of its own (stale pushes keep moving the parameters): momentum 0.5,
    // not the default 0.9, which with staleness ~6 versions oscillates around 40-50% here.
    const { code, stderr, report } = await train([
      ...mlp,
      ...['--sync', 'ps-async', '--staleness', '2', '--momentum', '0.5', '--steps', '300'],
      ...['--inject-fault', 'slow'],
    ]);
    expect(code, stderr).toBe(0);
    const r = report!;
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.9);
    const per = r.staleness!.perWorker;
    expect(per).toHaveLength(3);
    // The fault took hold: the slowed rank computes for a far larger share of its steps than the other
    // non-server rank (0.36 against 0.15 measured). Its samples/s is not compared: here each step waits
    // on the server's round trip, which hides a 3x compute stretch (their rates differed by 2-3%, both
    // ways under load); the in-memory test (worker-runtime ps-async.test.ts) compares the rates.
    const util = (rank: number) => r.workers.find((w) => w.rank === rank)!.computeUtilization!;
    expect(util(2)).toBeGreaterThan(1.3 * util(1));
    for (const p of per) expect(p.samplesPerSec).toBeGreaterThan(0);
    expect(r.staleness!.max).toBeGreaterThanOrEqual(r.staleness!.mean);
  });
});
