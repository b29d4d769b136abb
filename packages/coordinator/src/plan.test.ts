import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { DeviceInfo, LayerCost, ToCoordinator } from '@peertrain/protocol';
import { PlanError } from '@peertrain/planner';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { createCoordinator } from './coordinator.ts';
import type { Coordinator } from './types.ts';

// plan(): the planner's proposal before a run, from profiles scripted workers send by hand.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const ROOM = 'plan';
const coordId = coordinatorPeerId(ROOM);

/** Six layers; layer 2 is the heavy one. */
const LAYERS: LayerCost[] = [1, 1, 6, 1, 1, 2].map((costMs, i) => ({
  name: `${i}.dense`,
  costMs,
  paramBytes: 1000,
  activationBytes: 100,
  outputBytes: 0,
}));

interface Scripted {
  profiles: number;
  /** Answers every profile request after `delayMs`, or never when null. */
  delayMs: number | null;
}

async function setup(n: number, opts: { delayMs?: number | null; gib?: number } = {}) {
  const net = createMemoryNetwork();
  const coord: Coordinator = createCoordinator({
    mesh: createMesh(memoryTransport(net, coordId)),
    room: ROOM,
    pingEveryMs: 1000,
  });
  cleanups.push(() => coord.dispose());
  const device: DeviceInfo = {
    backend: 'cpu',
    gflops: 1,
    probes: [{ backend: 'cpu', ok: true, gflops: 1 }],
    ...(opts.gib !== undefined ? { deviceMemoryGiB: opts.gib } : {}),
  };
  const workers: Scripted[] = [];
  for (let i = 0; i < n; i++) {
    const mesh = createMesh(memoryTransport(net, workerPeerId(ROOM, `w${i}`)));
    cleanups.push(() => mesh.close());
    await mesh.connect(coordId);
    const w: Scripted = { profiles: 0, delayMs: opts.delayMs === undefined ? 0 : opts.delayMs };
    workers.push(w);
    const tell = (m: ToCoordinator): Promise<void> => mesh.sendControl(coordId, m);
    mesh.onControl((_from, msg) => {
      if (msg.type !== 'profile') return;
      w.profiles++;
      if (w.delayMs === null) return;
      // worker i is (i + 1) times slower than worker 0
      const layers = LAYERS.map((l) => ({ ...l, costMs: l.costMs * (i + 1) }));
      setTimeout(() => void tell({ type: 'profileResult', runId: msg.runId, layers }), w.delayMs);
    });
    await tell({ type: 'hello', protocolVersion: PROTOCOL_VERSION, room: ROOM, device });
  }
  const deadline = Date.now() + 2000;
  const idle = (): number => coord.view().peers.filter((p) => p.state === 'idle').length;
  while (idle() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return { coord, workers };
}

describe('Coordinator.plan', () => {
  it("profiles replica 0's peers one at a time and returns the planner's proposal", async () => {
    const { coord, workers } = await setup(3);
    const preview = await coord.plan({ strategy: 'pipeline', workers: 3, model: 'deepMlp' });
    expect(workers.map((w) => w.profiles)).toEqual([1, 1, 1]);
    expect(preview.layers.map((l) => l.name)).toEqual(LAYERS.map((l) => l.name));
    expect(preview.devices.map((d) => d.peerId)).toEqual(coord.view().peers.map((p) => p.peerId));
    // Stage order = join order; the slower devices get less work.
    const stages = preview.plan.stages;
    expect(stages).toHaveLength(3);
    expect(stages.map((s) => s.device)).toEqual(preview.devices.map((d) => d.peerId));
    expect(stages[0]!.first).toBe(0);
    expect(stages[2]!.end).toBe(6);
    expect(preview.plan.predictedStepMs).toBeGreaterThan(0);
    expect(preview.options.microBatches).toBe(8);
    expect(coord.view().run.phase).toBe('idle');
  });

  it('plans only replica 0 of a hybrid run', async () => {
    const { coord, workers } = await setup(4);
    const preview = await coord.plan({ strategy: 'hybrid', workers: 4, replicas: 2 });
    expect(preview.plan.stages).toHaveLength(2);
    expect(workers.map((w) => w.profiles)).toEqual([1, 1, 0, 0]);
  });

  it('refuses with ConfigError when fewer idle peers than stages, or for data parallelism', async () => {
    const { coord } = await setup(2);
    await expect(coord.plan({ strategy: 'pipeline', workers: 3 })).rejects.toThrow(
      /3 stages need 3 idle peers; 2 idle/,
    );
    await expect(coord.plan({ strategy: 'data', workers: 2 })).rejects.toMatchObject({ name: 'ConfigError' });
  });

  it('refuses with ConfigError while a run is active', async () => {
    const { coord } = await setup(1);
    const ac = new AbortController();
    // The run waits for 2 workers (only 1 joined): it stays in 'preparing'.
    const running = coord.run({ strategy: 'pipeline', workers: 2 }, { signal: ac.signal, waitMs: 10_000 });
    running.catch(() => {});
    await expect(coord.plan({ strategy: 'pipeline', workers: 1 })).rejects.toThrow(/run 1 is in progress/);
    ac.abort();
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('throws PlanError when a stage cannot fit its device', async () => {
    // 1e-6 GiB = ~1 KiB per device (a quarter of it usable): no layer's parameters fit.
    const { coord } = await setup(2, { gib: 1e-6 });
    const err: unknown = await coord.plan({ strategy: 'pipeline', workers: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanError);
    expect((err as PlanError).detail?.haveBytes).toBeCloseTo((2 ** 30 * 1e-6) / 4);
  });

  it('aborts with AbortError and ignores late profile results', async () => {
    const { coord, workers } = await setup(2, { delayMs: 60 });
    const ac = new AbortController();
    const p = coord.plan({ strategy: 'pipeline', workers: 2 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(workers[0]!.profiles).toBe(1);
    // The late answer arrives and changes nothing; a fresh plan gets its own answers.
    await new Promise((r) => setTimeout(r, 80));
    expect(workers[1]!.profiles).toBe(0);
    for (const w of workers) w.delayMs = 0;
    const preview = await coord.plan({ strategy: 'pipeline', workers: 2 });
    expect(preview.plan.stages).toHaveLength(2);
    expect(workers.map((w) => w.profiles)).toEqual([2, 1]);
  });

  it('a newer plan request supersedes one in flight', async () => {
    const { coord, workers } = await setup(2, { delayMs: null });
    const first = coord.plan({ strategy: 'pipeline', workers: 2 });
    first.catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    for (const w of workers) w.delayMs = 0;
    const second = coord.plan({ strategy: 'pipeline', workers: 2 });
    await expect(first).rejects.toThrow(/superseded/);
    await expect(second).resolves.toMatchObject({ plan: { stages: [{ first: 0 }, { end: 6 }] } });
  });
});
