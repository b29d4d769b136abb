import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { ControlMessage, DeviceInfo, RunConfigInput, ToCoordinator } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { MemoryNetwork } from '@peertrain/transport';
import { createCoordinator } from './coordinator.ts';
import type { Timers } from './coordinator.ts';
import type { Coordinator } from './types.ts';

// The heartbeat watchdog on the coordinator's injected clock and timers: scripted workers speak
// the protocol by hand, and the test decides when each one is heard from and when time passes.

const device: DeviceInfo = { backend: 'cpu', gflops: 1, probes: [{ backend: 'cpu', ok: true, gflops: 1 }] };
const ROOM = 'hb';
const TIMEOUT_MS = 3000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A clock and interval timers that only move when the test ticks them. */
function fakeTime(): { now: () => number; timers: Timers; tick: (ms: number) => void } {
  let t = 0;
  let next = 0;
  const intervals = new Map<number, () => void>();
  return {
    now: () => t,
    timers: {
      setInterval: (fn) => {
        intervals.set(++next, fn);
        return next;
      },
      clearInterval: (h) => void intervals.delete(h as number),
    },
    tick(ms) {
      t += ms;
      for (const fn of [...intervals.values()]) fn();
    },
  };
}

/** Lets the in-memory network deliver what is in flight (real time: messages hop on macrotasks). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 15));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await settle();
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

/**
 * A worker that reports every granted step below `gate.limit`, takes epochs (redoing from their
 * step) and rejoins when told it was dropped. While `frozen` it hears and says nothing.
 */
class Scripted {
  frozen = false;
  hellos = 0;
  private runId = -1;
  private rank = -1;
  private steps = 0;
  private done = 0;
  private upTo = -1;
  private readonly tell: (m: ToCoordinator) => Promise<void>;

  constructor(
    readonly id: string,
    private readonly mesh: ReturnType<typeof createMesh>,
    private readonly gate: { limit: number },
    private readonly coordId: string,
  ) {
    this.tell = (m) => mesh.sendControl(coordId, m);
    mesh.onControl((_from, msg) => {
      if (!this.frozen) this.on(msg);
    });
  }

  hello(): Promise<void> {
    this.hellos++;
    return this.tell({ type: 'hello', protocolVersion: PROTOCOL_VERSION, room: ROOM, device });
  }

  beat(seen: { gapMs?: number; sendWaitMs?: number } = {}): void {
    if (!this.frozen) void this.tell({ type: 'heartbeat', tWorker: 0, ...seen });
  }

  /** Reports what the gate lets through. */
  pump(): void {
    if (this.frozen || this.runId < 0) return;
    for (; this.done <= this.upTo && this.done < this.gate.limit; this.done++) {
      const { runId, done: step } = this;
      void this.tell({
        type: 'stepDone',
        runId,
        step,
        loss: 1,
        samples: 4,
        computeMs: 1,
        commMs: 1,
        bytesSent: 0,
      });
      if (step + 1 === this.steps && this.leads)
        void this.tell({ type: 'evalResult', runId, step: step + 1, accuracy: 0.9, loss: 1, count: 10 });
    }
  }

  private leads = false;

  private on(msg: ControlMessage): void {
    switch (msg.type) {
      case 'ping':
        void this.tell({ type: 'pong', id: msg.id, t0: msg.t0, tWorker: msg.t0 });
        return;
      case 'dropped':
        this.runId = -1;
        void this.hello();
        return;
      case 'assign':
        Object.assign(this, { runId: msg.runId, rank: msg.rank, steps: msg.config.steps, done: 0, upTo: -1 });
        this.leads = msg.rank === 0;
        void this.tell({ type: 'ready', runId: msg.runId, loadMs: 1 });
        return;
      case 'epoch':
        if (msg.runId !== this.runId) return;
        this.done = msg.fromStep;
        this.leads = msg.peers[0] === this.id;
        void this.tell({ type: 'epochAck', runId: msg.runId, epoch: msg.epoch });
        this.pump();
        return;
      case 'step':
        if (msg.runId !== this.runId) return;
        this.upTo = Math.max(this.upTo, msg.upTo);
        this.pump();
        return;
      default:
        return;
    }
  }
}

async function cluster(
  n: number,
  gate: { limit: number },
): Promise<{
  coord: Coordinator;
  time: ReturnType<typeof fakeTime>;
  workers: Scripted[];
  net: MemoryNetwork;
}> {
  const net = createMemoryNetwork();
  const time = fakeTime();
  const coordId = coordinatorPeerId(ROOM);
  const mesh = createMesh(memoryTransport(net, coordId));
  const coord = createCoordinator({ mesh, room: ROOM, now: time.now, timers: time.timers, probeBytes: 0 });
  cleanups.push(() => coord.dispose());
  const workers: Scripted[] = [];
  for (let i = 0; i < n; i++) {
    const id = workerPeerId(ROOM, `w${i}`);
    const m = createMesh(memoryTransport(net, id));
    cleanups.push(() => m.close());
    await m.connect(coordId);
    const w = new Scripted(id, m, gate, coordId);
    await w.hello();
    await until(() => coord.view().peers.find((p) => p.peerId === id)?.state === 'idle', `${id} admitted`);
    workers.push(w);
  }
  return { coord, time, workers, net };
}

/** One second passes: the live workers' heartbeats go out first, then the coordinator's timers run. */
async function second(time: ReturnType<typeof fakeTime>, workers: readonly Scripted[]): Promise<void> {
  for (const w of workers) w.beat();
  await settle();
  time.tick(1000);
  await settle();
}

const config = (over: Partial<RunConfigInput> = {}): RunConfigInput => ({
  ...{ workers: 2, steps: 8, batch: 4, evalEvery: 0, dataset: 'synthetic' },
  ...{ heartbeatTimeoutMs: TIMEOUT_MS, ...over },
});

const stateOf = (coord: Coordinator, id: string): string | undefined =>
  coord.view().peers.find((p) => p.peerId === id)?.state;

describe('heartbeats', () => {
  it('drops a member silent for the timeout, not before; a run that is not elastic fails naming it', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(2, gate);
    const [a, b] = workers as [Scripted, Scripted];
    const logs: string[] = [];
    coord.onEvent((e) => void (e.type === 'log' && logs.push(e.message)));
    const run = coord.run(config()).catch((e: unknown) => e);
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    b.frozen = true;
    for (let s = 0; s < TIMEOUT_MS / 1000; s++) await second(time, [a]);
    expect(stateOf(coord, b.id)).not.toBe('gone'); // silent for exactly the timeout: still in
    expect(coord.view().run.phase).toBe('running');
    await second(time, [a]);
    const err = await run;
    expect(err).toMatchObject({ name: 'PeerLostError', peerId: b.id });
    expect(String(err)).toMatch(/heartbeat/);
    expect(stateOf(coord, b.id)).toBe('gone');
    expect(coord.view().run.steps.map((s) => s.step)).toEqual([0, 1, 2, 3]); // the steps done are kept
    expect(stateOf(coord, a.id)).toBe('idle');
    // The drop says whom the coordinator still heard: a, a tick ago (so b's tab, not this side).
    expect(logs).toContainEqual(
      `1 of 2 members silent past the heartbeat timeout; the last word from any member came 1000 ms ago (${a.id})`,
    );
  });

  it('members silent together: the drop says nobody was heard for as long', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(2, gate);
    const logs: string[] = [];
    coord.onEvent((e) => void (e.type === 'log' && logs.push(e.message)));
    const run = coord.run(config()).catch((e: unknown) => e);
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    for (const w of workers) w.frozen = true;
    for (let s = 0; s <= TIMEOUT_MS / 1000; s++) await second(time, []);
    expect(await run).toMatchObject({ name: 'PeerLostError' });
    expect(logs).toContainEqual(
      expect.stringMatching(
        /^2 of 2 members silent past the heartbeat timeout; the last word from any member came [34]\d{3} ms ago/,
      ),
    );
  });

  it('counts no silence from a stall of the coordinator’s own', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(2, gate);
    const [a, b] = workers as [Scripted, Scripted];
    const logs: string[] = [];
    coord.onEvent((e) => void (e.type === 'log' && logs.push(e.message)));
    const run = coord.run(config()).catch((e: unknown) => e);
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    await second(time, workers);
    // The coordinator's tab does not run for 5 s, past the 3 s timeout; its watchdog's first tick
    // after comes before the heartbeats that waited for it are read.
    time.tick(5000);
    await settle();
    expect(workers.map((w) => stateOf(coord, w.id))).not.toContain('gone');
    expect(logs).toContainEqual(expect.stringMatching(/did not run for 5000 ms/));
    // Silence counts from there: a member that then says nothing for the timeout is dropped.
    b.frozen = true;
    for (let s = 0; s <= TIMEOUT_MS / 1000; s++) await second(time, [a]);
    expect(await run).toMatchObject({ name: 'PeerLostError', peerId: b.id });
  });

  it('ticks 2 s apart (a hidden dashboard tab’s timers) are no stall: a silent member goes on time', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(2, gate);
    const [a, b] = workers as [Scripted, Scripted];
    const run = coord.run(config()).catch((e: unknown) => e);
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    await second(time, workers);
    b.frozen = true;
    for (let s = 0; s < 2; s++) {
      a.beat();
      await settle();
      time.tick(2000);
      await settle();
    }
    expect(await run).toMatchObject({ name: 'PeerLostError', peerId: b.id });
  });

  it('keeps a slow member that sends heartbeats', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(2, gate);
    const run = coord.run(config());
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    // Step 4 takes 10 s (over three timeouts): no step reported, heartbeats only.
    for (let s = 0; s < 10; s++) await second(time, workers);
    expect(workers.map((w) => stateOf(coord, w.id))).not.toContain('gone');
    gate.limit = 8;
    for (const w of workers) w.pump();
    const report = await run;
    expect(report.loss.map((l) => l.step)).toEqual([...Array(8).keys()]);
  });

  it('elastic: drops a silent member, tells it when it speaks again and readmits it at its rank', async () => {
    const gate = { limit: 4 };
    const { coord, time, workers } = await cluster(3, gate);
    const [a, b, c] = workers as [Scripted, Scripted, Scripted];
    const logs: string[] = [];
    coord.onEvent((e) => void (e.type === 'log' && logs.push(e.message)));
    const run = coord.run(config({ workers: 3, elastic: true }));
    await until(() => coord.view().run.step === 4, 'steps 0..3');
    b.frozen = true;
    for (let s = 0; s <= TIMEOUT_MS / 1000; s++) await second(time, [a, c]);
    expect(stateOf(coord, b.id)).toBe('gone');
    expect(coord.view().run.phase).toBe('running'); // the epoch ended, not the run
    // The tab thaws: its first word is void, it is told it was dropped and says hello again.
    b.frozen = false;
    b.beat({ gapMs: 4000.4, sendWaitMs: 2 });
    await until(() => stateOf(coord, b.id) === 'idle', 'the dropped member back in the room');
    expect(b.hellos).toBe(2);
    // Its first beat's own account of the silence is logged (here: its timer ran 4 s late).
    expect(logs).toContainEqual(
      `${b.id}'s own view of the silence: its heartbeat timer ran 4000 ms after the last, whose beat waited 2 ms to reach its link`,
    );
    gate.limit = 8; // a and c finish step 4; b joins at the boundary of step 5
    for (const w of [a, c]) w.pump();
    const report = await run;
    expect(report.loss.map((l) => l.step)).toEqual([...Array(8).keys()]);
    expect(report.membershipChanges?.map(({ step, cause, peerId }) => ({ step, cause, peerId }))).toEqual([
      { step: 4, cause: 'heartbeat', peerId: b.id },
      { step: 5, cause: 'joined', peerId: b.id },
    ]);
    const back = coord.view().peers.find((p) => p.peerId === b.id)!;
    expect(back).toMatchObject({ rank: 1, joinedAtStep: 5, lastStep: 7 });
  });
});
