import { afterEach, describe, expect, it, vi } from 'vitest';
import { transportComplianceCases } from './compliance.ts';
import type { TransportPair } from './compliance.ts';
import { createMemoryNetwork, memoryTransport } from './memory.ts';
import type { MemoryNetwork } from './memory.ts';
import { createMesh } from './mesh.ts';
import { TabBroker, tabLinksTransport } from './tab-links.ts';
import type { TabLiveness } from './tab-links.ts';
import type { Connection, Transport } from './types.ts';

/** Named locks in one process, as navigator.locks: `gone` resolves when the holder lets go. */
class FakeLocks implements TabLiveness {
  private readonly held = new Map<string, { released: Promise<void>; release: () => void }>();

  hold(name: string): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const entry = { released, release: () => (this.held.delete(name), release()) };
    this.held.set(name, entry);
    return Promise.resolve(entry.release);
  }

  gone(name: string, signal: AbortSignal): Promise<void> {
    const entry = this.held.get(name);
    if (!entry) return Promise.resolve();
    return new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      void entry.released.then(resolve);
    });
  }

  /** The tab holding a lock of peer `id` dies: its locks go, and nothing is said. */
  kill(id: string): void {
    for (const [name, e] of [...this.held]) if (name.includes(`/${id}/`)) e.release();
  }

  /** The oldest incarnation of peer `id` dies. */
  killOldest(id: string): void {
    for (const [name, e] of this.held) {
      if (!name.includes(`/${id}/`)) continue;
      e.release();
      return;
    }
  }
}

/** One browser profile: a broker, its locks, and a memory network standing in for WebRTC. */
class Profile {
  readonly locks = new FakeLocks();
  readonly broker = new TabBroker(this.locks);
  readonly ports: MessagePort[] = [];

  constructor(readonly net: MemoryNetwork = createMemoryNetwork()) {}

  /** A tab of this profile: tab links over a memory transport. */
  async tab(id: string, net = this.net): Promise<Transport> {
    const { port1, port2 } = new MessageChannel();
    this.broker.attach(port1);
    this.ports.push(port1, port2);
    const t = tabLinksTransport(memoryTransport(net, id), { broker: port2, liveness: this.locks });
    expect(await t.ready).toBe(true);
    return t;
  }

  close(): void {
    for (const p of this.ports) p.close();
  }
}

const profiles: Profile[] = [];
afterEach(() => {
  for (const p of profiles.splice(0)) p.close();
});

function profile(net?: MemoryNetwork): Profile {
  const p = new Profile(net);
  profiles.push(p);
  return p;
}

function tabPair(): () => Promise<TransportPair> {
  return async () => {
    const p = profile();
    const a = await p.tab('peer-a');
    const b = await p.tab('peer-b');
    return {
      a,
      b,
      cleanup: async () => {
        await a.close();
        await b.close();
        p.close();
      },
    };
  };
}

describe('tab links, two tabs of one profile (MessagePorts)', () => {
  for (const c of transportComplianceCases(tabPair(), {
    maxBufferedAmount: (8 << 20) + (1 << 20),
    eventTimeoutMs: 5_000,
  })) {
    it(c.name, async () => {
      await c.run(AbortSignal.timeout(30_000));
    });
  }
});

/** Resolves with the next connection `t` accepts. */
function accepted(t: Transport): Promise<Connection> {
  return new Promise((resolve) => {
    const off = t.onConnection((c) => {
      off();
      resolve(c);
    });
  });
}

describe('tab links', () => {
  it('links tabs of one profile through a port, and reaches a tab of another profile through the inner transport', async () => {
    const net = createMemoryNetwork();
    const home = profile(net);
    const away = profile(net);
    const a = await home.tab('a');
    const b = await home.tab('b');
    const c = await away.tab('c');
    expect(home.broker.ids().sort()).toEqual(['a', 'b']);
    const [ab] = await Promise.all([a.dial('b'), accepted(b)]);
    const [ac] = await Promise.all([a.dial('c'), accepted(c)]);
    // A tab link is this module's PortConnection; the other is the memory transport's.
    expect(ab.constructor.name).toBe('PortConnection');
    expect(ac.constructor.name).toBe('MemoryConnection');
    expect(ab.maxMessageSize).toBe(1 << 20);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('a receiver acknowledges once a MiB or 5 ms after the first unacknowledged message, not per message', async () => {
    const p = profile();
    const a = await p.tab('a');
    const b = await p.tab('b');
    const [ab, ba] = await Promise.all([a.dial('b'), accepted(b)]);
    let got = 0;
    ba.onMessage(() => got++);
    const arrived = async (n: number): Promise<void> => {
      while (got < n) await new Promise((r) => setImmediate(r));
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }); // ports stay real
    try {
      for (let i = 1; i <= 3; i++) {
        await ab.send(new Uint8Array(1000));
        await arrived(i);
      }
      await vi.advanceTimersByTimeAsync(4);
      await new Promise((r) => setImmediate(r));
      expect(ab.bufferedAmount).toBe(3000); // no acknowledgement yet (one per message before)
      await vi.advanceTimersByTimeAsync(1);
      while (ab.bufferedAmount > 0) await new Promise((r) => setImmediate(r));
      // A MiB goes acknowledged without any timer.
      await ab.send(new Uint8Array(1 << 20));
      await arrived(4);
      while (ab.bufferedAmount > 0) await new Promise((r) => setImmediate(r));
    } finally {
      vi.useRealTimers();
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('a tab that dies without a word: its links close with PeerLostError and the broker forgets it', async () => {
    const p = profile();
    const a = await p.tab('a');
    const b = await p.tab('b');
    const [ab] = await Promise.all([a.dial('b'), accepted(b)]);
    const closed = new Promise<Error | undefined>((resolve) => ab.onClose(resolve));
    p.locks.kill('b');
    const reason = await closed;
    expect(reason?.name).toBe('PeerLostError');
    expect(reason?.message).toMatch(/tab is gone/);
    await expect(ab.send(new Uint8Array(4))).rejects.toThrow(/closed|gone/);
    await new Promise((r) => setTimeout(r, 0));
    expect(p.broker.ids()).toEqual(['a']);
    await a.close();
  });

  it('a tab that closes says so on its links at once, and a dial to it then goes to the inner transport', async () => {
    const p = profile();
    const a = await p.tab('a');
    const b = await p.tab('b');
    const [ab] = await Promise.all([a.dial('b'), accepted(b)]);
    const closed = new Promise<Error | undefined>((resolve) => ab.onClose(resolve));
    await b.close();
    expect(await closed).toBeUndefined();
    await new Promise((r) => setTimeout(r, 0));
    // Not a tab of the profile any more: the memory network answers, and it has no "b" either.
    await expect(a.dial('b')).rejects.toMatchObject({ name: 'PeerLostError' });
    await a.close();
  });

  it('a reloaded tab (same id, new incarnation) is reached, and the old incarnation dying does not unregister it', async () => {
    const p = profile();
    const a = await p.tab('a');
    await p.tab('b'); // the old page: it vanishes below without closing its transport
    const fresh = await p.tab('b', createMemoryNetwork()); // the reloaded page registers before the old one is noticed gone
    p.locks.killOldest('b');
    await new Promise((r) => setTimeout(r, 0));
    expect(p.broker.ids().sort()).toEqual(['a', 'b']);
    const [ab, ba] = await Promise.all([a.dial('b'), accepted(fresh)]);
    expect(ab.constructor.name).toBe('PortConnection');
    const got = new Promise<Uint8Array>((resolve) => ba.onMessage(resolve));
    await ab.send(Uint8Array.of(7, 8, 9));
    expect(Array.from(await got)).toEqual([7, 8, 9]);
    await fresh.close();
    await a.close();
  });

  it('tensors cross a tab link exactly through a mesh, in both directions at once', async () => {
    const p = profile();
    const a = await p.tab('a');
    const b = await p.tab('b');
    const ma = createMesh(a);
    const mb = createMesh(b);
    await Promise.all([ma.connect('b'), mb.connect('a')]);
    const key = { runId: 1, step: 0, microBatch: null, tag: 3 };
    const values = Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i));
    const bytes = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer.slice(0));
    const msg = { ...key, dtype: 'float32' as const, shape: [values.length], data: bytes(values) };
    const back = { ...msg, data: bytes(values.map((x) => -x)) };
    await Promise.all([ma.sendTensor('b', msg), mb.sendTensor('a', back)]);
    const [atB, atA] = await Promise.all([mb.recvTensor('a', key), ma.recvTensor('b', key)]);
    expect(Buffer.from(atB.data).equals(Buffer.from(msg.data))).toBe(true);
    expect(Buffer.from(atA.data).equals(Buffer.from(back.data))).toBe(true);
    await ma.close();
    await mb.close();
    await a.close();
    await b.close();
  });

  it('a broker that never answers: tab links are off (TransportError told), every dial goes to the inner transport', async () => {
    const { port1, port2 } = new MessageChannel();
    const locks = new FakeLocks();
    const inner = memoryTransport(createMemoryNetwork(), 'a');
    const errors: Error[] = [];
    const t = tabLinksTransport(inner, {
      broker: port2,
      liveness: locks,
      registerTimeoutMs: 50,
      onUnavailable: (e) => errors.push(e),
    });
    expect(await t.ready).toBe(false);
    expect(errors.map((e) => [e.name, e.message])).toEqual([
      ['TransportError', 'the tab-link broker did not answer within 50 ms'],
    ]);
    // Every dial is the inner transport's now: it knows no "b".
    await expect(t.dial('b')).rejects.toMatchObject({ name: 'PeerLostError' });
    port1.close();
    port2.close();
    await t.close();
  });

  it('closed before the broker answers: ready says false at once, and nothing is told', async () => {
    const { port1, port2 } = new MessageChannel();
    const errors: Error[] = [];
    const t = tabLinksTransport(memoryTransport(createMemoryNetwork(), 'a'), {
      broker: port2,
      liveness: new FakeLocks(),
      // Longer than the test may take: only the close can settle `ready` in time.
      registerTimeoutMs: 60_000,
      onUnavailable: (e) => errors.push(e),
    });
    await new Promise((r) => setTimeout(r, 0)); // the registration is on its way
    await t.close();
    expect(await t.ready).toBe(false);
    expect(errors).toEqual([]);
    port1.close();
    port2.close();
  });

  it('a connection the inner transport accepts while the broker has not answered yet reaches the mesh', async () => {
    // The tab's transport is built and its mesh on it at once; a WebRTC peer that dials in the
    // moment the page registered with the signaling server must not be lost to the registration.
    const net = createMemoryNetwork();
    const { port1, port2 } = new MessageChannel();
    const slowBroker = new TabBroker(new FakeLocks());
    const a = tabLinksTransport(memoryTransport(net, 'a'), { broker: port2, liveness: new FakeLocks() });
    const mesh = createMesh(a);
    const remote = createMesh(memoryTransport(net, 'far'));
    await remote.connect('a');
    expect(mesh.isConnected('far')).toBe(true);
    slowBroker.attach(port1); // the broker answers only now
    expect(await a.ready).toBe(true);
    await remote.close();
    await mesh.close();
    await a.close();
    port1.close();
    port2.close();
  });
});
