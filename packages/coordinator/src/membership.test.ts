import { describe, expect, it, vi } from 'vitest';
import { PROTOCOL_VERSION, workerPeerId } from '@peertrain/protocol';
import type { DeviceInfo, ToWorker } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type { Hub } from './hub.ts';
import { Membership } from './membership.ts';
import type { MembershipChange } from './membership.ts';

const device: DeviceInfo = { backend: 'cpu', gflops: 1, probes: [{ backend: 'cpu', ok: true, gflops: 1 }] };
const ROOM = 'm';

function setup(): { m: Membership; sent: [string, ToWorker][]; changes: MembershipChange[] } {
  const sent: [string, ToWorker][] = [];
  let t = 0;
  const hub: Hub = {
    mesh: {} as Mesh,
    now: () => ++t,
    emit: vi.fn(),
    log: vi.fn(),
    send: (peerId, msg) => sent.push([peerId, msg]),
    changed: vi.fn(),
    subscribe: () => () => {},
    onEvent: () => () => {},
    clear: vi.fn(),
  };
  const m = new Membership(ROOM, hub, 1000);
  const changes: MembershipChange[] = [];
  m.onChange((c) => changes.push(c));
  return { m, sent, changes };
}

const hello = (room = ROOM, protocolVersion = PROTOCOL_VERSION) =>
  ({ type: 'hello', room, protocolVersion, device }) as const;

describe('Membership', () => {
  it('admits peers of its room at its protocol version, and refuses the rest by name', () => {
    const { m, sent, changes } = setup();
    const a = workerPeerId(ROOM, 'a');
    m.linkOpened(a);
    expect(m.admitted(a)).toBeUndefined(); // joining until its hello
    m.hello(a, hello());
    expect(m.admitted(a)?.state).toBe('idle');
    const b = workerPeerId(ROOM, 'b');
    m.linkOpened(b);
    m.hello(b, hello(ROOM, PROTOCOL_VERSION + 1));
    expect(m.peers.has(b)).toBe(false); // a refused peer leaves the list
    m.hello(workerPeerId('other', 'c'), hello('other'));
    expect(sent.map(([, msg]) => msg.type)).toEqual(['welcome', 'reject', 'reject']);
    const reject = sent[1]![1];
    expect(reject.type === 'reject' && reject.reason).toMatch(/protocol version mismatch/);
    expect(changes).toEqual([{ type: 'admitted', peerId: a }]);
  });

  it('marks a silent stage stalled, never an elastic pipeline’s spare, which reports no steps', () => {
    const { m } = setup();
    const [a, b, spare] = ['a', 'b', 'spare'].map((n) => workerPeerId(ROOM, n)) as [string, string, string];
    for (const id of [a, b, spare]) m.hello(id, hello());
    const rec = (id: string) => m.peers.get(id)!;
    for (const [id, stage] of [
      [a, 0],
      [b, 1],
      [spare, null],
    ] as const) {
      Object.assign(rec(id), {
        role: 'stage',
        stage: stage === null ? null : { first: stage, end: stage + 1 },
        state: 'computing',
      });
    }
    rec(a).lastStep = 5;
    rec(a).lastReportAt = 5000;
    rec(b).lastStep = 4;
    rec(b).lastReportAt = 100;
    expect(m.checkStalls(5000, [a, b, spare], { phase: 'running', startedAt: 0 })).toBe(true);
    expect([a, b, spare].map((id) => rec(id).state)).toEqual(['computing', 'stalled', 'computing']);
  });

  it('never marks stalled a dropped member that said hello again (idle until the next step boundary readmits it)', () => {
    const { m } = setup();
    const [a, b] = ['a', 'b'].map((n) => workerPeerId(ROOM, n)) as [string, string];
    for (const id of [a, b]) m.hello(id, hello());
    Object.assign(m.peers.get(a)!, { state: 'computing', lastStep: 9, lastReportAt: 60_000 });
    m.silent(b, 6000); // frozen: dropped
    m.hello(b, hello()); // thawed: a new record, idle, no step reported
    expect(m.checkStalls(60_000, [a, b], { phase: 'running', startedAt: 0 })).toBe(false);
    expect(m.idle().map((p) => p.peerId)).toEqual([b]);
  });

  it('starts an epoch per change of members, and tells who was lost', () => {
    const { m, changes } = setup();
    const [a, b] = [workerPeerId(ROOM, 'a'), workerPeerId(ROOM, 'b')];
    m.hello(a, hello());
    m.hello(b, hello());
    expect(m.view()).toEqual({ epoch: 0, members: [] });
    const v = m.beginEpoch([
      { peerId: a, rank: 0, role: 'worker' },
      { peerId: b, rank: 1, role: 'worker' },
    ]);
    expect(v.epoch).toBe(1);
    for (const p of m.peers.values()) p.state = 'computing';
    m.left(b, 'tab closed');
    expect(changes.at(-1)).toEqual({ type: 'lost', peerId: b, detail: 'left: tab closed' });
    const back = m.endEpoch([a, b]);
    expect(back.map((p) => p.state)).toEqual(['idle', 'gone']); // the lost peer stays gone
    expect(m.view()).toEqual({ epoch: 2, members: [] });
    expect(changes.filter((c) => c.type === 'epoch').map((c) => c.type === 'epoch' && c.view.epoch)).toEqual([
      1, 2,
    ]);
  });

  it('waits for idle peers, oldest first, and rejects at once when already aborted', async () => {
    const { m } = setup();
    const got = m.waitForIdle(2, 1000, new AbortController().signal);
    m.hello(workerPeerId(ROOM, 'x'), hello());
    m.hello(workerPeerId(ROOM, 'y'), hello());
    expect((await got).map((p) => p.peerId)).toEqual([workerPeerId(ROOM, 'x'), workerPeerId(ROOM, 'y')]);
    const ctl = new AbortController();
    ctl.abort(new Error('stopped'));
    await expect(m.waitForIdle(5, 1000, ctl.signal)).rejects.toThrowError('stopped');
  });
});
