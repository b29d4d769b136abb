import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '@peertrain/coordinator';
import type { Coordinator } from '@peertrain/coordinator';
import { checkpointFromBase64, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { Checkpoint, RunConfigInput } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { MemoryNetwork } from '@peertrain/transport';
import { createWorkerRuntime } from './runtime.ts';
import { memoryWorker, nodeCompute, until } from './test-cluster.ts';
import type { WorkerRuntime } from './types.ts';

// The dashboard tab reloading mid-run, in Node: the coordinator's mesh closes after a checkpoint,
// the workers keep their runtime and wait, a new coordinator registers the same id, the workers
// say hello again and the run resumed from the checkpoint ends on the uninterrupted run's
// parameters, bit for bit.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const config: RunConfigInput = {
  dataset: 'synthetic',
  model: 'mlp',
  workers: 2,
  steps: 12,
  batch: 8,
  lr: 0.05,
  seed: 5,
  evalEvery: 0,
  bucketElems: 10_000,
  optimizer: { kind: 'sgd', momentum: 0.9 },
  checkpointEvery: 3,
};

/**
 * A coordinator on `net` under the room's id. `close` is the tab going away: the coordinator is
 * disposed and its transport closed, which frees the id (dispose alone closes only the mesh).
 */
function dashboard(net: MemoryNetwork, room: string): { coord: Coordinator; close: () => Promise<void> } {
  const transport = memoryTransport(net, coordinatorPeerId(room));
  const coord = createCoordinator({ mesh: createMesh(transport), room });
  const close = async (): Promise<void> => {
    await coord.dispose();
    await transport.close();
  };
  cleanups.push(close);
  return { coord, close };
}

/** Runs `config` on `coord` and disposes it (the tab closing) once the checkpoint after `at` steps is out. */
async function closedAfterCheckpoint(
  { coord, close }: ReturnType<typeof dashboard>,
  at: number,
): Promise<Checkpoint> {
  let taken: Checkpoint | null = null;
  const closed = new Promise<void>((resolve) => {
    coord.onEvent((e) => {
      if (e.type !== 'checkpoint' || e.manifest.step !== at || taken) return;
      taken = checkpointFromBase64(e.manifest, e.blobBase64);
      resolve();
    });
  });
  const run = coord.run(config, { waitMs: 30_000 });
  run.catch(() => undefined); // rejects with AbortError('coordinator disposed')
  await closed;
  await close();
  await expect(run).rejects.toThrow(/disposed/);
  return taken!;
}

describe('a worker whose coordinator goes away', () => {
  it('waits, says hello to the reloaded coordinator, and the resumed run equals the uninterrupted one', async () => {
    const room = 'reload';
    const net = createMemoryNetwork();
    const first = dashboard(net, room);
    const workers = [0, 1].map((i) => memoryWorker(net, room, `w${i}`, cleanups));
    await first.coord.run(config, { waitMs: 30_000 });
    const reference = first.coord.trainedModel()!.params.slice();

    const cp = await closedAfterCheckpoint(first, 6);
    await until(() => workers.every((w) => w.status().phase === 'joining'), 'the workers waiting');
    for (const w of workers) expect(w.status().lastError?.name).toBe('PeerLostError');
    await sleep(1500); // a reload takes a while: the workers keep dialling meanwhile

    const again = dashboard(net, room).coord;
    await until(() => workers.every((w) => w.status().phase === 'idle'), 'the workers back, idle');
    const report = await again.run(config, { waitMs: 30_000, resume: cp });
    expect(report.loss.map((l) => l.step)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(again.trainedModel()!.params).toEqual(reference);
  });

  it('gives up after its coordinatorReturnMs with PhaseTimeoutError', async () => {
    const room = 'gone';
    const net = createMemoryNetwork();
    const { close } = dashboard(net, room);
    const w: WorkerRuntime = createWorkerRuntime({
      mesh: createMesh(memoryTransport(net, workerPeerId(room, 'a'))),
      room,
      coordinatorId: coordinatorPeerId(room),
      compute: ({ signal }) => nodeCompute(signal),
      coordinatorReturnMs: 1500,
    });
    cleanups.push(() => w.leave('test over'));
    await until(() => w.status().phase === 'idle', 'welcome');
    await close();
    await until(() => w.status().phase === 'error', 'the wait to end', 10_000);
    expect(w.status().lastError?.name).toBe('PhaseTimeoutError');
    expect(w.status().lastError?.message).toBe(
      'waiting for the coordinator to come back timed out after 1500 ms',
    );
  });
});
