import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '@peertrain/coordinator';
import type { Coordinator, CoordinatorInit, PeerView } from '@peertrain/coordinator';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { nodeCompute } from './test-cluster.ts';
import { createWorkerRuntime } from './runtime.ts';
import type { WorkerRuntime } from './types.ts';
import type { Compute, TrainSession } from './compute.ts';

/** The CPU engine with every evaluation taking `ms` longer, as a big test set would. */
async function slowEvaluations(signal: AbortSignal, ms: number): Promise<Compute> {
  const c = await nodeCompute(signal);
  const slow = (s: TrainSession): TrainSession =>
    new Proxy(s, {
      get(target, key) {
        if (key === 'evaluate') {
          return async (...args: Parameters<TrainSession['evaluate']>) => {
            await new Promise((r) => setTimeout(r, ms));
            return target.evaluate(...args);
          };
        }
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  return new Proxy(c, {
    get(target, key) {
      if (key === 'prepare')
        return async (...args: Parameters<Compute['prepare']>) => slow(await target.prepare(...args));
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

// The worker's half of the room's telemetry with the real engine: its pong carries tf.memory()
// (and, during a run, the parameters it holds), and it acks the coordinator's bandwidth probe.

const ROOM = 'wtele';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function until(coord: Coordinator, cond: (peers: PeerView[]) => boolean, ms = 20_000): Promise<void> {
  if (cond(coord.view().peers)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('condition not met in time'));
    }, ms);
    const off = coord.subscribe((v) => {
      if (!cond(v.peers)) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** A coordinator and worker runtimes (real engine, CPU) on one in-memory network. */
function room(
  names: readonly string[],
  opts: Omit<CoordinatorInit, 'mesh' | 'room'> = {},
  maxMessageSize?: number,
  compute: (signal: AbortSignal) => Promise<Compute> = nodeCompute,
): { coord: Coordinator; workers: WorkerRuntime[] } {
  const net = createMemoryNetwork();
  const coord = createCoordinator({
    mesh: createMesh(memoryTransport(net, coordinatorPeerId(ROOM))),
    room: ROOM,
    ...opts,
  });
  cleanups.push(() => coord.dispose());
  const workers = names.map((name) => {
    const w = createWorkerRuntime({
      mesh: createMesh(
        memoryTransport(
          net,
          workerPeerId(ROOM, name),
          maxMessageSize !== undefined ? { maxMessageSize } : {},
        ),
      ),
      room: ROOM,
      coordinatorId: coordinatorPeerId(ROOM),
      compute: ({ signal }) => compute(signal),
    });
    cleanups.push(() => w.leave('test over'));
    return w;
  });
  return { coord, workers };
}

describe('worker telemetry', () => {
  it('reports engine memory and acks the bandwidth probe; params show up once a run holds them', async () => {
    const { coord, workers } = room(['a', 'b'], { pingEveryMs: 20, probeBytes: 128 * 1024 }, 16 * 1024);
    await until(
      coord,
      (ps) => ps.length === 2 && ps.every((p) => p.memory !== null && p.bandwidthBytesPerSec !== null),
    );
    // The worker's own page sees the same engine memory.
    for (const w of workers) expect(w.status().memory?.numTensors).toBeGreaterThanOrEqual(0);
    for (const p of coord.view().peers) {
      expect(p.memory!.numTensors).toBeGreaterThanOrEqual(0);
      expect(p.memory!.numBytes).toBeGreaterThanOrEqual(0);
      expect(p.bandwidthBytesPerSec).toBeGreaterThan(0);
    }
    const run = coord.run(
      { dataset: 'synthetic', model: 'mlp', workers: 2, steps: 30, batch: 8, evalEvery: 0 },
      { waitMs: 20_000 },
    );
    // While it trains, the pong says what the run holds: the whole model's parameters.
    await until(coord, (ps) => ps.every((p) => (p.memory?.paramBytes ?? 0) > 0));
    await run;
    const steps = coord.view().run.steps;
    // All-reduce moves bytes every step; both ranks computed.
    expect(steps.every((s) => (s.bytes ?? 0) > 0)).toBe(true);
    expect(steps.every((s) => s.computeMsByRank?.length === 2)).toBe(true);
  }, 60_000);

  it("refreshes its own page's memory every step, not only on the coordinator's ping", async () => {
    // Pings are far apart: what the page shows after a step must come from the step itself.
    const {
      coord,
      workers: [w],
    } = room(['solo'], { pingEveryMs: 600_000 });
    await until(coord, (ps) => ps.length === 1 && ps[0]!.state === 'idle');
    await coord.run(
      { dataset: 'synthetic', model: 'mlp', workers: 1, steps: 3, batch: 8, evalEvery: 0 },
      { waitMs: 20_000 },
    );
    expect(w!.status().step).toBe(3);
    expect(w!.status().memory?.paramBytes).toBeGreaterThan(0);
  }, 60_000);

  it('keeps the newest traceCapacity spans for the trace export and counts the dropped ones', async () => {
    const capacity = 40;
    const { coord } = room(['t0', 't1'], { traceCapacity: capacity });
    await until(coord, (ps) => ps.length === 2 && ps.every((p) => p.state === 'idle'));
    const steps = 30;
    await coord.run(
      { dataset: 'synthetic', model: 'mlp', workers: 2, steps, batch: 8, evalEvery: 0 },
      { waitMs: 20_000 },
    );
    const events = coord.trace().traceEvents;
    const spans = events.filter((e) => e.ph === 'X');
    expect(spans).toHaveLength(capacity);
    // Both ranks report several spans a step: far more than 40 in 30 steps, so some went.
    const dropped = events.find((e) => e.name === 'dropped_spans');
    expect((dropped?.args as { count: number } | undefined)?.count).toBeGreaterThan(0);
    // The newest were kept: the last step's spans are there, the first step's are not.
    const stepsSeen = spans.map((e) => (e.args as { step: number }).step);
    expect(Math.max(...stepsSeen)).toBe(steps - 1);
    expect(Math.min(...stepsSeen)).toBeGreaterThan(0);
  }, 60_000);

  it('counts the optimizer update as compute and leaves evaluations out of the step time', async () => {
    // Every step is evaluated, and each evaluation takes 40 ms more than a step computes.
    const { coord, workers } = room(['a', 'b'], {}, undefined, (signal) => slowEvaluations(signal, 40));
    await until(coord, (ps) => ps.length === 2 && ps.every((p) => p.state === 'idle'));
    const report = await coord.run(
      { dataset: 'synthetic', model: 'mlp', workers: 2, steps: 12, batch: 8, evalEvery: 1 },
      { waitMs: 20_000 },
    );
    expect(report.evals).toHaveLength(12);
    // Each worker's page and the report say how it reached its peer: one in-memory link here.
    for (const w of workers) expect(w.status().links).toEqual({ memory: 1 });
    expect(report.workers.map((w) => w.links)).toEqual([{ memory: 1 }, { memory: 1 }]);
    // Both ranks share one thread here: 0.3-0.7 alone, 0.18 once beside the full test run's
    // browsers; with the evaluations counted as idle time the share was 0.02.
    for (const w of report.workers) expect(w.computeUtilization).toBeGreaterThan(0.08);
    // Each rank's steps have their update on the compute lane.
    const { spans } = coord.view().run;
    const updates = spans.filter((sp) => sp.kind === 'optimizer');
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.every((sp) => sp.lane === 'compute')).toBe(true);
    expect(new Set(updates.map((sp) => sp.peerId)).size).toBe(2);
  }, 60_000);
});
