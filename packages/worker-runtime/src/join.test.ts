import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '@peertrain/coordinator';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { MemoryNetwork, Transport } from '@peertrain/transport';
import { JOIN_RETRY_MS, createWorkerRuntime } from './runtime.ts';
import { nodeCompute, until } from './test-cluster.ts';
import type { WorkerRuntime, WorkerStatus } from './types.ts';

// Joining a room whose coordinator is not there yet: a worker link opened before the dashboard,
// or a dashboard tab that reloads while workers dial it.

const ROOM = 'wjoin';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A transport whose dials to the coordinator hang until aborted while `hang.on`, as a PeerJS offer
 * that nobody answers does (the signaling server may not say the id is unknown).
 */
function hangingDials(t: Transport, hang: { on: boolean }): Transport {
  return {
    localId: t.localId,
    dial: (peerId, opts) =>
      !hang.on
        ? t.dial(peerId, opts)
        : new Promise((_, reject) => {
            const s = opts?.signal;
            s?.addEventListener('abort', () => reject(s.reason as Error), { once: true });
          }),
    onConnection: (handler) => t.onConnection(handler),
    close: () => t.close(),
  };
}

function worker(
  net: MemoryNetwork,
  name: string,
  joinTimeoutMs?: number,
  hang?: { on: boolean },
): WorkerRuntime {
  const t = memoryTransport(net, workerPeerId(ROOM, name));
  const w = createWorkerRuntime({
    mesh: createMesh(hang ? hangingDials(t, hang) : t),
    room: ROOM,
    coordinatorId: coordinatorPeerId(ROOM),
    compute: ({ signal }) => nodeCompute(signal),
    ...(joinTimeoutMs !== undefined ? { joinTimeoutMs } : {}),
  });
  cleanups.push(() => w.leave('test over'));
  return w;
}

async function phase(w: WorkerRuntime, want: WorkerStatus['phase'], ms = 20_000): Promise<WorkerStatus> {
  await until(
    () => w.status().phase === want,
    () => `phase ${want} (it is ${w.status().phase})`,
    ms,
  );
  return w.status();
}

describe('joining before the coordinator is there', () => {
  it('keeps dialling and joins once the coordinator comes up', async () => {
    const net = createMemoryNetwork();
    const w = worker(net, 'early');
    await phase(w, 'joining');
    // Several dials fail (no such id) before the coordinator registers.
    await new Promise((r) => setTimeout(r, 3 * JOIN_RETRY_MS));
    expect(w.status().phase).toBe('joining');
    const coord = createCoordinator({
      mesh: createMesh(memoryTransport(net, coordinatorPeerId(ROOM))),
      room: ROOM,
    });
    cleanups.push(() => coord.dispose());
    await phase(w, 'idle');
    expect(coord.view().peers.map((p) => p.peerId)).toEqual([workerPeerId(ROOM, 'early')]);
  }, 30_000);

  it('keeps trying past the join timeout, showing why, and joins once the coordinator comes', async () => {
    const net = createMemoryNetwork();
    const w = worker(net, 'patient', 500);
    // The wait covers the cpu backend's probe before the dial too: over 17 s under load here.
    await until(() => w.status().lastError !== null, 'a join attempt to fail', 60_000);
    let s = w.status();
    expect(s.phase).toBe('joining');
    expect(s.lastError?.name).toBe('PeerLostError');
    expect(s.lastError?.message).toContain(coordinatorPeerId(ROOM));
    // Several join timeouts later it is still at it.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(w.status().phase).toBe('joining');
    const coord = createCoordinator({
      mesh: createMesh(memoryTransport(net, coordinatorPeerId(ROOM))),
      room: ROOM,
    });
    cleanups.push(() => coord.dispose());
    s = await phase(w, 'idle');
    expect(s.lastError).toBeNull();
    expect(coord.view().peers.map((p) => p.peerId)).toEqual([workerPeerId(ROOM, 'patient')]);
  }, 90_000);

  it('a dial the join timeout cuts short is shown as no coordinator answering, and the next one goes out', async () => {
    const net = createMemoryNetwork();
    const hang = { on: true };
    const w = worker(net, 'unanswered', 500, hang);
    await until(() => w.status().lastError !== null, 'a join attempt to fail', 60_000);
    const s = w.status();
    expect(s.phase).toBe('joining');
    expect(s.lastError).toMatchObject({ name: 'PeerLostError' });
    expect(s.lastError?.message).toBe(
      `peer ${coordinatorPeerId(ROOM)} lost: no coordinator answered within 0.5 s`,
    );
    hang.on = false;
    const coord = createCoordinator({
      mesh: createMesh(memoryTransport(net, coordinatorPeerId(ROOM))),
      room: ROOM,
    });
    cleanups.push(() => coord.dispose());
    expect((await phase(w, 'idle')).lastError).toBeNull();
  }, 90_000);
});
