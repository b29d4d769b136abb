import { describe, expect, it } from 'vitest';
import { useTrainCli } from './train-cli.fixture.ts';

// Tabs of one browser profile (`--one-profile`) link through the browser (MessagePorts brokered by a
// SharedWorker, transport tab-links.ts) instead of WebRTC. The numbers must not care how the bytes
// travelled: each run is checked against the single-worker reference, and the report must say that
// every link was a tab link (a run whose tabs fell back to WebRTC fails here).

const cli = useTrainCli();
const train = cli.train;

const mnist = ['--model', 'mlp', '--dataset', 'mnist', '--backend', 'wasm', '--one-profile', '--reference'];

describe('tab links: tabs of one profile in real Chromium', () => {
  it('ring all-reduce over tab links equals the reference; a tab closed mid-run (--elastic) is noticed and the survivors end equal to it', async () => {
    const whole = await train([...mnist, '--workers', '3', '--sync', 'allreduce', '--steps', '30']);
    expect(whole.code, whole.stderr).toBe(0);
    const r = whole.report!;
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    // Each worker of a 3-ring links to the other two, through the browser.
    expect(r.workers.map((w) => w.links)).toEqual([{ tab: 2 }, { tab: 2 }, { tab: 2 }]);

    const hit = await train([
      ...mnist,
      '--workers',
      '4',
      '--sync',
      'allreduce',
      '--steps',
      '30',
      '--elastic',
      '--inject-fault',
      'vanish-rank1@10',
    ]);
    expect(hit.code, hit.stderr).toBe(0);
    const e = hit.report!;
    expect(e.loss.map((l) => l.step)).toEqual([...Array(30).keys()]);
    expect(e.membershipChanges).toHaveLength(1);
    expect(e.membershipChanges![0]!.peerId).toBe(e.workers[1]!.peerId);
    expect(e.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    // A ring of 4: each worker links to its two neighbours.
    expect(e.workers.map((w) => w.links)).toEqual([{ tab: 2 }, { tab: 2 }, { tab: 2 }, { tab: 2 }]);
  });

  it('a 1F1B pipeline of 3 stages over tab links equals the reference', async () => {
    const p = await train([
      ...mnist,
      '--workers',
      '3',
      '--strategy',
      'pipeline',
      '--schedule',
      '1f1b',
      '--micro-batches',
      '4',
      '--steps',
      '10',
    ]);
    expect(p.code, p.stderr).toBe(0);
    const r = p.report!;
    expect(r.reference!.maxRelDiff).toBeLessThanOrEqual(1e-5);
    // Every stage links to the other two (neighbours, and the gather of the model at the end).
    expect(r.workers.map((w) => w.links)).toEqual([{ tab: 2 }, { tab: 2 }, { tab: 2 }]);
  });
});
