import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '@peertrain/coordinator';
import { DATASETS, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { nodeCompute } from './test-cluster.ts';
import { createWorkerRuntime } from './runtime.ts';

// Uneven data shards (RunConfig.shards) end to end in Node: shards only decide which samples each
// worker draws, the per-worker batch stays the same, and the single-worker reference (trained on
// every rank's batch concatenated, from the assigned shards) still equals the distributed run.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('uneven data shards over the in-memory transport', () => {
  it('3 workers with shards 1:2:5 equal the single worker at batch 3x8', async () => {
    const room = 'uneven';
    const net = createMemoryNetwork();
    const coord = createCoordinator({
      mesh: createMesh(memoryTransport(net, coordinatorPeerId(room))),
      room,
    });
    cleanups.push(() => coord.dispose());
    for (let i = 0; i < 3; i++) {
      const w = createWorkerRuntime({
        mesh: createMesh(memoryTransport(net, workerPeerId(room, `w${i}`))),
        room,
        coordinatorId: coordinatorPeerId(room),
        compute: ({ signal }) => nodeCompute(signal),
      });
      cleanups.push(() => w.leave('test over'));
    }
    const report = await coord.run(
      {
        dataset: 'synthetic',
        model: 'mlp',
        workers: 3,
        steps: 5,
        batch: 8,
        lr: 0.05,
        seed: 5,
        evalEvery: 0,
        reference: true,
        shards: [1, 2, 5],
      },
      { waitMs: 30_000 },
    );
    const train = DATASETS.synthetic.train; // 4096
    const shards = coord
      .view()
      .peers.filter((p) => p.rank !== null)
      .sort((a, b) => a.rank! - b.rank!)
      .map((p) => p.shard);
    expect(shards).toEqual([
      { start: 0, count: Math.floor(train / 8) },
      { start: 512, count: Math.floor((train * 2) / 8) },
      { start: 1536, count: Math.floor((train * 5) / 8) },
    ]);
    expect(report.reference).toBeDefined();
    expect(report.reference!.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(report.reference!.referenceLoss - report.finalLoss)).toBeLessThan(1e-4);
  });
});
