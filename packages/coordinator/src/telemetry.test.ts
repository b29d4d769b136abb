import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { ControlMessage, DeviceInfo, ToCoordinator, WireSpan } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Mesh } from '@peertrain/transport';
import { createCoordinator } from './coordinator.ts';
import { activityOf } from './intake.ts';
import type { Coordinator, CoordinatorEvent, PeerState, PeerView } from './types.ts';

// The room's telemetry as the coordinator keeps it: every peer state transition, the memory report,
// the bandwidth probe and the per-step chart data. Workers are scripted by hand (the test decides
// when each reports a step), over the in-memory transport.

const device: DeviceInfo = { backend: 'cpu', gflops: 1, probes: [{ backend: 'cpu', ok: true, gflops: 1 }] };
const ROOM = 'tele';
const COORD = coordinatorPeerId(ROOM);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { probeBytes?: number; stallAfterMs?: number } = {}): {
  net: ReturnType<typeof createMemoryNetwork>;
  coord: Coordinator;
  logs: string[];
} {
  const net = createMemoryNetwork();
  const coord = createCoordinator({
    mesh: createMesh(memoryTransport(net, COORD)),
    room: ROOM,
    pingEveryMs: 15,
    probeBytes: opts.probeBytes ?? 0,
    stallAfterMs: opts.stallAfterMs ?? 60_000,
  });
  const logs: string[] = [];
  coord.onEvent((e: CoordinatorEvent) => {
    if (e.type === 'log') logs.push(e.message);
  });
  cleanups.push(() => coord.dispose());
  return { net, coord, logs };
}

const peerOf = (coord: Coordinator, id: string): PeerView | undefined =>
  coord.view().peers.find((p) => p.peerId === id);

/** Resolves once `cond` holds on a view (checked now and on every change). */
function until(coord: Coordinator, cond: () => boolean, ms = 10_000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('condition not met in time'));
    }, ms);
    const off = coord.subscribe(() => {
      if (!cond()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

function stateOf(coord: Coordinator, id: string, state: PeerState): Promise<void> {
  return until(coord, () => peerOf(coord, id)?.state === state);
}

interface Scripted {
  id: string;
  mesh: Mesh;
  tell(m: ToCoordinator): Promise<void>;
  hello(): Promise<void>;
  /** Grants received so far (the highest upTo), -1 before any. */
  granted(): number;
  runId(): number;
  rank(): number;
  /** Reports `step` done with the given compute / comm split, spans and running byte total. */
  report(
    step: number,
    o?: { computeMs?: number; commMs?: number; bytesSent?: number; spans?: WireSpan[] },
  ): void;
}

/** A worker the test drives: it answers pings (with a memory report) and probes, reports on command. */
async function scripted(
  net: ReturnType<typeof createMemoryNetwork>,
  name: string,
  opts: { answerProbes?: boolean } = {},
): Promise<Scripted> {
  const id = workerPeerId(ROOM, name);
  const mesh = createMesh(memoryTransport(net, id));
  cleanups.push(() => mesh.close());
  await mesh.connect(COORD);
  const tell = (m: ToCoordinator): Promise<void> => mesh.sendControl(COORD, m);
  let upTo = -1;
  let runId = -1;
  let rank = -1;
  let steps = 0;
  mesh.onControl((_from, msg: ControlMessage) => {
    if (msg.type === 'ping') {
      void tell({
        type: 'pong',
        id: msg.id,
        t0: msg.t0,
        tWorker: msg.t0,
        memory: { numBytes: 4096, numTensors: 7, paramBytes: 1024 },
      });
    }
    if (msg.type === 'probe' && opts.answerProbes !== false) {
      const key = { runId: 0, step: msg.id, microBatch: null, tag: msg.tag };
      void mesh
        .recvTensor(COORD, key)
        .then((t) => tell({ type: 'probeAck', id: msg.id, bytes: t.data.byteLength }));
    }
    if (msg.type === 'assign') {
      runId = msg.runId;
      rank = msg.rank;
      steps = msg.config.steps;
      void tell({ type: 'ready', runId, loadMs: 1 });
    }
    if (msg.type === 'step') upTo = Math.max(upTo, msg.upTo);
  });
  return {
    id,
    mesh,
    tell,
    hello: () => tell({ type: 'hello', protocolVersion: PROTOCOL_VERSION, room: ROOM, device }),
    granted: () => upTo,
    runId: () => runId,
    rank: () => rank,
    report(step, o = {}) {
      void tell({
        type: 'stepDone',
        runId,
        step,
        loss: 1 / (step + 1),
        samples: 4,
        computeMs: o.computeMs ?? 5,
        commMs: o.commMs ?? 1,
        bytesSent: o.bytesSent ?? 0,
        ...(o.spans ? { spans: o.spans } : {}),
      });
      if (rank === 0 && step + 1 === steps) {
        void tell({ type: 'evalResult', runId, step: steps, accuracy: 0.9, loss: 0.3, count: 10 });
      }
    },
  };
}

const span = (kind: WireSpan['kind'], lane: WireSpan['lane'], startMs: number, durMs: number): WireSpan => ({
  kind,
  lane,
  startMs,
  durMs,
  step: 0,
});

describe('peer states', () => {
  it('joining while linked without a hello, idle once admitted, gone when it leaves', async () => {
    const { net, coord } = setup();
    const w = await scripted(net, 'a');
    await stateOf(coord, w.id, 'joining');
    expect(peerOf(coord, w.id)?.device).toBeNull();
    await w.hello();
    await stateOf(coord, w.id, 'idle');
    expect(peerOf(coord, w.id)?.device?.backend).toBe('cpu');
    await w.tell({ type: 'leave', reason: 'bye' });
    await stateOf(coord, w.id, 'gone');
  });

  it('drops a refused peer from the joining list, and ignores what a joining peer says', async () => {
    const { net, coord } = setup();
    const w = await scripted(net, 'b');
    await stateOf(coord, w.id, 'joining');
    await w.tell({ type: 'pong', id: 1, t0: 0, tWorker: 0, memory: { numBytes: 1, numTensors: 1 } });
    await w.tell({ type: 'hello', protocolVersion: PROTOCOL_VERSION + 1, room: ROOM, device });
    await until(coord, () => peerOf(coord, w.id) === undefined);
  });

  it('goes gone when its link closes', async () => {
    const { net, coord } = setup();
    const w = await scripted(net, 'c');
    await w.hello();
    await stateOf(coord, w.id, 'idle');
    await w.mesh.close();
    await stateOf(coord, w.id, 'gone');
  });

  it('computing when assigned, sending after a communication-bound step, stalled when silent, idle after', async () => {
    // Long enough that a loaded machine does not stall a peer between two lines of this test.
    const { net, coord, logs } = setup({ stallAfterMs: 400 });
    const a = await scripted(net, 'a');
    const b = await scripted(net, 'b');
    await a.hello();
    await b.hello();
    const run = coord.run({ workers: 2, steps: 3, batch: 4, evalEvery: 0, dataset: 'synthetic' });
    run.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
    await stateOf(coord, a.id, 'computing');
    expect(peerOf(coord, b.id)?.state).toBe('computing');
    await until(coord, () => a.granted() >= 0 && b.granted() >= 0);

    // Step 0: a mostly waits on the links (a 9 ms send over a 2 ms compute), b mostly computes.
    a.report(0, { spans: [span('compute', 'compute', 0, 2), span('send', 'comm', 2, 9)], bytesSent: 500 });
    b.report(0, { spans: [span('forward', 'compute', 0, 8), span('recv', 'comm', 1, 3)], bytesSent: 300 });
    await stateOf(coord, a.id, 'sending');
    expect(peerOf(coord, b.id)?.state).toBe('computing');

    // Step 1: b goes on, a falls silent: a (behind) stalls, b (waiting at the barrier) does not.
    b.report(1, { bytesSent: 600 });
    await until(coord, () => peerOf(coord, b.id)?.lastStep === 1); // b is ahead from here on
    await stateOf(coord, a.id, 'stalled');
    expect(peerOf(coord, b.id)?.state).toBe('computing');
    expect(logs.some((l) => l.includes(`${a.id} stalled`))).toBe(true);

    // a reports again: computing (no spans: computeMs > commMs decides).
    a.report(1, { computeMs: 9, commMs: 1, bytesSent: 1500 });
    await stateOf(coord, a.id, 'computing');
    await until(coord, () => a.granted() >= 2 && b.granted() >= 2);
    a.report(2, { bytesSent: 1600 });
    b.report(2, { bytesSent: 700 });
    await run;
    expect(peerOf(coord, a.id)?.state).toBe('idle');
    expect(peerOf(coord, b.id)?.state).toBe('idle');
  });

  it('stalls everyone when the whole run falls silent, and not while paused', async () => {
    const { net, coord } = setup({ stallAfterMs: 400 });
    const a = await scripted(net, 'a');
    await a.hello();
    const run = coord.run({ workers: 1, steps: 2, batch: 4, evalEvery: 0, dataset: 'synthetic' });
    run.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
    await until(coord, () => a.granted() >= 0);
    coord.pause();
    a.report(0);
    await until(coord, () => coord.view().run.phase === 'paused');
    await new Promise((r) => setTimeout(r, 600)); // longer than stallAfterMs
    expect(peerOf(coord, a.id)?.state).toBe('computing');
    coord.resume();
    await stateOf(coord, a.id, 'stalled');
    a.report(1);
    await run;
    expect(peerOf(coord, a.id)?.state).toBe('idle');
  });
});

describe('activityOf', () => {
  it('activityOf: computing, sending or waiting, overlapping spans counted once', () => {
    const msg = (spans: WireSpan[]): Parameters<typeof activityOf>[0] => ({
      type: 'stepDone',
      runId: 1,
      step: 0,
      samples: 1,
      computeMs: 0,
      commMs: 0,
      bytesSent: 0,
      spans,
    });
    // Three overlapping 4 ms sends cover 6 ms of wall time; 5 ms of compute: sending.
    const sends = [span('send', 'comm', 0, 4), span('send', 'comm', 1, 4), span('send', 'comm', 2, 4)];
    expect(activityOf(msg([...sends, span('forward', 'compute', 0, 5)]))).toBe('sending');
    expect(activityOf(msg([...sends, span('forward', 'compute', 0, 7)]))).toBe('computing');
    // Receives and waits are waiting on a peer, not moving data: a stage idle until its input arrives.
    const recvs = [span('recv', 'comm', 10, 8), span('wait', 'comm', 20, 4)]; // 12 ms
    expect(activityOf(msg([...sends, ...recvs, span('forward', 'compute', 0, 7)]))).toBe('waiting');
    expect(activityOf(msg([...sends, ...recvs, span('forward', 'compute', 0, 12)]))).toBe('computing');
    expect(activityOf(msg([span('allreduce', 'comm', 0, 9), span('recv', 'comm', 9, 8)]))).toBe('sending');
    // Without spans: the step's own compute / comm times (no way to tell waiting apart).
    expect(activityOf({ ...msg([]), computeMs: 2, commMs: 3 })).toBe('sending');
  });
});

describe('memory, bandwidth and chart data', () => {
  it('keeps the memory of the latest pong', async () => {
    const { net, coord } = setup();
    const w = await scripted(net, 'm');
    await w.hello();
    await until(coord, () => peerOf(coord, w.id)?.memory !== null);
    expect(peerOf(coord, w.id)?.memory).toEqual({ numBytes: 4096, numTensors: 7, paramBytes: 1024 });
  });

  it('measures the bandwidth to a peer after its first pong', async () => {
    const { net, coord } = setup({ probeBytes: 64 * 1024 });
    const w = await scripted(net, 'p');
    await w.hello();
    await until(coord, () => (peerOf(coord, w.id)?.bandwidthBytesPerSec ?? null) !== null);
    // In-memory links are fast; 64 KiB can take no less than the 0.1 ms floor.
    const bw = peerOf(coord, w.id)!.bandwidthBytesPerSec!;
    expect(bw).toBeGreaterThan(1e5);
    expect(bw).toBeLessThanOrEqual((64 * 1024) / 1e-4);
  });

  it('gives up on a peer that never acks (no bandwidth, a log line) and cancels a probe on dispose', async () => {
    const { net, coord, logs } = setup({ probeBytes: 1024 });
    const w = await scripted(net, 'q', { answerProbes: false });
    await w.hello();
    await until(coord, () => (peerOf(coord, w.id)?.rttMs ?? null) !== null);
    // The probe is in flight (10 s timeout): disposing must settle it quietly.
    await coord.dispose();
    await new Promise((r) => setTimeout(r, 20));
    expect(peerOf(coord, w.id)?.bandwidthBytesPerSec).toBeNull();
    expect(logs.filter((l) => l.includes('probe'))).toEqual([]);
  });

  it('records per-step bytes, step time and per-rank compute for the charts', async () => {
    const { net, coord } = setup();
    const a = await scripted(net, 'a');
    const b = await scripted(net, 'b');
    await a.hello();
    await b.hello();
    const run = coord.run({ workers: 2, steps: 2, batch: 4, evalEvery: 0, dataset: 'synthetic' });
    run.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
    await until(coord, () => a.granted() >= 1 && b.granted() >= 1);
    const [r0, r1] = a.rank() === 0 ? [a, b] : [b, a];
    r0.report(0, { computeMs: 10, bytesSent: 1000 });
    r1.report(0, { computeMs: 20, bytesSent: 400 });
    r0.report(1, { computeMs: 12, bytesSent: 1500 });
    r1.report(1, { computeMs: 22, bytesSent: 1400 });
    await run;
    const steps = coord.view().run.steps;
    expect(steps.map((s) => s.bytes)).toEqual([1400, 1500]); // running totals turned into per-step sums
    expect(steps.map((s) => s.computeMsByRank)).toEqual([
      [10, 20],
      [12, 22],
    ]);
    for (const s of steps) expect(s.stepMs).toBeGreaterThanOrEqual(0);
  });

  it("appends a run's steps to one array that its views share; a new run starts another", async () => {
    const { net, coord } = setup();
    const a = await scripted(net, 'a');
    await a.hello();
    const config = { workers: 1, steps: 2, batch: 4, evalEvery: 0, dataset: 'synthetic' } as const;
    const first = coord.run(config);
    first.catch(() => {});
    await until(coord, () => a.granted() >= 1);
    a.report(0);
    await until(coord, () => coord.view().run.step === 1);
    const early = coord.view().run;
    expect(early.steps.map((s) => s.step)).toEqual([0]);
    a.report(1);
    await first;
    const late = coord.view().run;
    expect(late).not.toBe(early); // a new view per change...
    expect(late.steps).toBe(early.steps); // ...over the same steps, grown in place (no copy a step)
    expect(late.steps.map((s) => s.step)).toEqual([0, 1]);
    const second = coord.run(config);
    second.catch(() => {});
    await until(coord, () => coord.view().run.runId !== late.runId);
    expect(coord.view().run.steps).not.toBe(late.steps);
    expect(coord.view().run.steps).toHaveLength(0);
    expect(late.steps).toHaveLength(2); // the finished run's steps are left as they were
    coord.stop('test over');
    await second.catch(() => undefined);
  });
});
