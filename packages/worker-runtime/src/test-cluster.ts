// Test helper: a real coordinator and `n` real worker runtimes (TensorFlow.js on the CPU) over one
// in-memory network. The network is returned too, so a test can make a peer vanish (closePeer).
import { createCoordinator } from '@peertrain/coordinator';
import type { Coordinator } from '@peertrain/coordinator';
import type { RunConfigInput, RunReport } from '@peertrain/protocol';
import { memoryShardCache } from '@peertrain/engine';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { MemoryNetwork, Transport } from '@peertrain/transport';
import { engineCompute, engineMemory } from './engine-compute.ts';
import { serveCompute } from './compute-thread-host.ts';
import { threadedCompute } from './compute-thread.ts';
import type { EngineComputeOptions } from './engine-compute.ts';
import type { Compute } from './compute.ts';
import { createWorkerRuntime } from './runtime.ts';
import type { WorkerRuntime } from './types.ts';

/**
 * The probe of in-process workers: a 784-16-10 stack for a few ms. The default workload (103 MFLOP
 * for 300 ms) took about a second a worker on tfjs-cpu, a quarter of the worker-runtime tests' CPU
 * time; what these tests check does not depend on the probe's GFLOP/s.
 */
export const QUICK_PROBE = { workload: { batch: 8, layers: [784, 16, 10] }, budgetMs: 5 } as const;

/**
 * A worker's compute engine in Node: tfjs-cpu, shards cached in memory, the quick probe, no warm-up
 * (it buys the browser's first steps their speed; these tests time nothing, and it would cost them
 * two passes a session).
 */
export function nodeCompute(
  signal?: AbortSignal,
  opts: Omit<EngineComputeOptions, 'backend' | 'signal'> = {},
): Promise<Compute> {
  return engineCompute({
    backend: 'cpu',
    cache: memoryShardCache(),
    probe: QUICK_PROBE,
    warmUp: false,
    ...opts,
    ...(signal ? { signal } : {}),
  });
}

/**
 * nodeCompute behind the compute thread's protocol (compute-thread.ts): the page's proxy and the
 * thread's host at the two ends of a MessageChannel, in this thread (every value structured-cloned
 * as a Worker's would be). `onTerminate` hears the page end the thread.
 */
export function threadedNodeCompute(
  signal?: AbortSignal,
  opts: Omit<EngineComputeOptions, 'backend' | 'signal'> = {},
  onTerminate?: () => void,
): ReturnType<typeof threadedCompute> {
  const { port1, port2 } = new MessageChannel();
  serveCompute(port2, () => nodeCompute(undefined, opts), engineMemory);
  port1.start();
  port2.start();
  return threadedCompute(
    port1,
    { backend: 'cpu', mnistUrl: 'file:unused' },
    {
      terminate: () => {
        port1.close();
        port2.close();
        onTerminate?.();
      },
      ...(signal ? { signal } : {}),
    },
  );
}

/** Starts the cluster; every teardown (workers leave, the coordinator is disposed) goes on `cleanups`. */
export function memoryCluster(
  n: number,
  room: string,
  cleanups: (() => Promise<void>)[],
  opts: { deviceSteps?: boolean; threaded?: boolean; wrap?: (name: string, t: Transport) => Transport } = {},
): { coord: Coordinator; net: MemoryNetwork; workers: WorkerRuntime[] } {
  const net = createMemoryNetwork();
  const coord = createCoordinator({ mesh: createMesh(memoryTransport(net, coordinatorPeerId(room))), room });
  cleanups.push(() => coord.dispose());
  const workers: WorkerRuntime[] = [];
  const { wrap, ...rest } = opts;
  for (let i = 0; i < n; i++) {
    const name = `w${i}`;
    workers.push(
      memoryWorker(net, room, name, cleanups, { ...rest, ...(wrap ? { wrap: (t) => wrap(name, t) } : {}) }),
    );
  }
  return { coord, net, workers };
}

/** One more worker runtime on `net` (a peer that arrives later, e.g. to join a run in progress). */
export function memoryWorker(
  net: MemoryNetwork,
  room: string,
  name: string,
  cleanups: (() => Promise<void>)[],
  opts: { deviceSteps?: boolean; threaded?: boolean; wrap?: (t: Transport) => Transport } = {},
): WorkerRuntime {
  const id = workerPeerId(room, name);
  const { wrap = (t: Transport): Transport => t, threaded = false, ...computeOpts } = opts;
  const runtime = createWorkerRuntime({
    room,
    coordinatorId: coordinatorPeerId(room),
    // Small messages so the chunked path is what runs.
    mesh: createMesh(wrap(memoryTransport(net, id, { maxMessageSize: 16 * 1024 }))),
    compute: ({ signal }) => (threaded ? threadedNodeCompute : nodeCompute)(signal, computeOpts),
  });
  cleanups.push(() => runtime.leave('test over'));
  return runtime;
}

/**
 * Trains `config` on a fresh cluster of `n`; `kill`: the rank whose tab closes once the coordinator
 * has recorded `afterSteps` steps. Returns the report and the trained parameters (a copy).
 */
export async function trainCluster(
  n: number,
  config: RunConfigInput,
  room: string,
  cleanups: (() => Promise<void>)[],
  kill?: { rank: number; afterSteps: number },
): Promise<{ report: RunReport; params: Float32Array }> {
  const { coord, net } = memoryCluster(n, room, cleanups);
  if (kill) {
    const off = coord.onEvent((e) => {
      if (e.type !== 'progress' || e.step < kill.afterSteps) return;
      off();
      net.closePeer(coord.view().peers.find((p) => p.rank === kill.rank)!.peerId);
    });
  }
  const report = await coord.run(config, { waitMs: 30_000 });
  const trained = coord.trainedModel();
  if (trained === null) throw new Error(`the run in ${room} handed back no model`);
  return { report, params: trained.params.slice() };
}

/** Polls `cond` every 20 ms until it holds; past `ms`, fails naming `what` (a function: read then). */
export async function until(cond: () => boolean, what: string | (() => string), ms = 20_000): Promise<void> {
  for (let t = 0; t < ms && !cond(); t += 20) await new Promise((r) => setTimeout(r, 20));
  if (!cond()) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
}

/**
 * A worker named `name` arrives once the coordinator has recorded `afterSteps` steps: the barrier
 * is held (paused) until it is in the room, so it joins at the next boundary the method allows.
 * Returns a getter for it (null until it arrives).
 */
export function joinDuringRun(
  coord: Coordinator,
  net: MemoryNetwork,
  room: string,
  name: string,
  afterSteps: number,
  cleanups: (() => Promise<void>)[],
): () => WorkerRuntime | null {
  let joiner: WorkerRuntime | null = null;
  const off = coord.onEvent((e) => {
    if (e.type !== 'progress' || e.step < afterSteps) return;
    off();
    coord.pause();
    joiner = memoryWorker(net, room, name, cleanups);
    const t = setInterval(() => {
      if (joiner?.status().phase !== 'idle') return;
      clearInterval(t);
      coord.resume();
    }, 20);
    cleanups.push(() => Promise.resolve(clearInterval(t)));
  });
  return () => joiner;
}
