import { afterEach, describe, expect, it } from 'vitest';
import { buildModel, modelPreset, paramDiff } from '@peertrain/engine';
import { PROTOCOL_VERSION, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { ControlMessage, RunConfigInput } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { WorkerTimers } from './heartbeat.ts';
import { createWorkerRuntime } from './runtime.ts';
import { memoryCluster, nodeCompute, until } from './test-cluster.ts';
import { freezable } from './test-freeze.ts';
import type { Freezer } from './test-freeze.ts';

// Heartbeats on the worker's side, and a frozen worker tab in an elastic run: dropped after the
// heartbeat timeout, readmitted when it thaws, and the run still equals the undisturbed one.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('worker heartbeats', () => {
  it('start once welcomed, stop on leave, and a `dropped` makes the worker say hello again', async () => {
    const room = 'hbw';
    const net = createMemoryNetwork();
    const coordMesh = createMesh(memoryTransport(net, coordinatorPeerId(room)));
    cleanups.push(() => coordMesh.close());
    const heard: ControlMessage['type'][] = [];
    const beatsHeard: ControlMessage[] = [];
    coordMesh.onControl((from, msg) => {
      heard.push(msg.type);
      if (msg.type === 'heartbeat') beatsHeard.push(msg);
      if (msg.type === 'hello')
        void coordMesh.sendControl(from, { type: 'welcome', protocolVersion: PROTOCOL_VERSION, room });
    });
    const beats = new Set<() => void>();
    const timers: WorkerTimers = {
      setInterval: (fn) => (beats.add(fn), fn),
      clearInterval: (h) => void beats.delete(h as () => void),
    };
    const w = createWorkerRuntime({
      mesh: createMesh(memoryTransport(net, workerPeerId(room, 'a'))),
      room,
      coordinatorId: coordinatorPeerId(room),
      compute: ({ signal }) => nodeCompute(signal),
      timers,
      now: () => clock,
    });
    let clock = 0;
    cleanups.push(() => w.leave('test over'));
    await until(() => w.status().phase === 'idle', 'welcome');
    await until(() => beats.size === 1, 'the heartbeat timer');
    for (const beat of beats) beat();
    await until(() => heard.includes('heartbeat'), 'a heartbeat');
    // Each later beat says how long after the last its timer ran, and how long that one waited
    // to reach the link (here: no wait).
    clock = 2500;
    for (const beat of beats) beat();
    await until(() => beatsHeard.length === 2, 'a second heartbeat');
    expect(beatsHeard).toEqual([
      { type: 'heartbeat', tWorker: 0 },
      { type: 'heartbeat', tWorker: 2500, gapMs: 2500, sendWaitMs: 0 },
    ]);

    await coordMesh.sendControl(workerPeerId(room, 'a'), { type: 'dropped', reason: 'test' });
    await until(() => heard.filter((t) => t === 'hello').length === 2, 'the second hello');
    await until(() => w.status().phase === 'idle' && beats.size === 1, 'welcomed again, beating');

    await w.leave('done');
    expect(beats.size).toBe(0);
  }, 60_000);
});

// 3 workers at batch 8 on the synthetic set, SGD with momentum; a 2 s heartbeat timeout.
const base: RunConfigInput = {
  ...{ dataset: 'synthetic', model: 'mlp', bucketElems: 10_000, elastic: true, heartbeatTimeoutMs: 2000 },
  ...{ workers: 3, steps: 24, batch: 8, lr: 0.05, seed: 9, evalEvery: 0 },
};
const layout = buildModel(modelPreset('mlp')).params;

describe('a frozen worker in an elastic run', () => {
  it('is dropped after the heartbeat timeout, readmitted when it thaws; the run equals the undisturbed one', async () => {
    const calm = memoryCluster(3, 'hb-calm', cleanups);
    const calmReport = await calm.coord.run(base, { waitMs: 30_000 });
    expect(calmReport.membershipChanges).toEqual([]);
    const calmParams = calm.coord.trainedModel()!.params.slice();

    const room = 'hb-freeze';
    const freezers = new Map<string, Freezer>();
    const { coord } = memoryCluster(3, room, cleanups, {
      wrap: (name, t) => {
        const f = freezable(t);
        freezers.set(workerPeerId(room, name), f.freezer);
        return f.transport;
      },
    });
    let victim: string | null = null;
    const stateOf = (): string | undefined => coord.view().peers.find((p) => p.peerId === victim)?.state;
    const off = coord.onEvent((e) => {
      if (e.type !== 'progress' || e.step !== 8) return;
      off();
      victim = coord.view().peers.find((p) => p.rank === 1)!.peerId;
      freezers.get(victim)!.freeze();
    });
    const run = coord.run(base, { waitMs: 30_000 });
    await until(() => stateOf() === 'gone', 'the frozen worker dropped');
    // Hold the barrier until the thawed worker is back in the room: it rejoins at the next boundary.
    coord.pause();
    freezers.get(victim!)!.thaw();
    await until(() => stateOf() === 'idle', 'the thawed worker back in the room');
    coord.resume();
    const report = await run;

    expect(report.loss.map((l) => l.step)).toEqual([...Array(24).keys()]);
    const changes = report.membershipChanges?.map(({ cause, peerId }) => ({ cause, peerId }));
    expect(changes).toEqual([
      { cause: 'heartbeat', peerId: victim },
      { cause: 'joined', peerId: victim },
    ]);
    const [drop, join] = report.membershipChanges!;
    expect(join!.step).toBeGreaterThanOrEqual(drop!.step);
    expect(coord.view().peers.find((p) => p.peerId === victim)).toMatchObject({ rank: 1, lastStep: 23 });
    const diff = paramDiff(coord.trainedModel()!.params, calmParams, layout);
    console.log(`frozen worker dropped and readmitted: ${JSON.stringify(diff)}`);
    expect(diff.maxRelDiff).toBeLessThanOrEqual(1e-5);
  }, 300_000);
});
