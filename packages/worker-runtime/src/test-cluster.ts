// Test helper: a real coordinator and `n` real worker runtimes (TensorFlow.js on the CPU) over one
// in-memory network. The network is returned too, so a test can make a peer vanish (closePeer).
import { createCoordinator } from '@peertrain/coordinator';
import type { Coordinator } from '@peertrain/coordinator';
import { memoryShardCache } from '@peertrain/engine';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { MemoryNetwork } from '@peertrain/transport';
import { engineCompute } from './engine-compute.ts';
import { createWorkerRuntime } from './runtime.ts';
import type { WorkerRuntime } from './types.ts';

/** Starts the cluster; every teardown (workers leave, the coordinator is disposed) goes on `cleanups`. */
export function memoryCluster(
  n: number,
  room: string,
  cleanups: (() => Promise<void>)[],
  opts: { deviceSteps?: boolean } = {},
): { coord: Coordinator; net: MemoryNetwork; workers: WorkerRuntime[] } {
  const net = createMemoryNetwork();
  const coordinatorId = coordinatorPeerId(room);
  const coord = createCoordinator({ mesh: createMesh(memoryTransport(net, coordinatorId)), room });
  cleanups.push(() => coord.dispose());
  const workers: WorkerRuntime[] = [];
  for (let i = 0; i < n; i++) {
    const id = workerPeerId(room, `w${i}`);
    const runtime = createWorkerRuntime({
      room,
      coordinatorId,
      // Small messages so the chunked path is what runs.
      mesh: createMesh(memoryTransport(net, id, { maxMessageSize: 16 * 1024 })),
      compute: ({ signal }) => engineCompute({ backend: 'cpu', cache: memoryShardCache(), signal, ...opts }),
    });
    cleanups.push(() => runtime.leave('test over'));
    workers.push(runtime);
  }
  return { coord, net, workers };
}
