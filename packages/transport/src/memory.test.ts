import { PeerLostError, TransportError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { createMemoryNetwork, memoryTransport } from './memory.ts';
import type { Connection, Transport } from './types.ts';

async function link(a: Transport, b: Transport): Promise<{ ab: Connection; ba: Connection }> {
  const incoming = new Promise<Connection>((resolve) => b.onConnection(resolve));
  const ab = await a.dial(b.localId);
  return { ab, ba: await incoming };
}

function nextMessage(c: Connection): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const off = c.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

describe('memoryTransport', () => {
  it('refuses a duplicate id and dials to unknown ids', async () => {
    const net = createMemoryNetwork();
    const a = memoryTransport(net, 'a');
    expect(() => memoryTransport(net, 'a')).toThrow(TransportError);
    await expect(a.dial('zz')).rejects.toBeInstanceOf(PeerLostError);
    expect(net.peers()).toEqual(['a']);
  });

  it('a link takes the smaller maxMessageSize of its ends', async () => {
    const net = createMemoryNetwork();
    const a = memoryTransport(net, 'a', { maxMessageSize: 1000 });
    const b = memoryTransport(net, 'b', { maxMessageSize: 500 });
    const { ab, ba } = await link(a, b);
    expect([ab.maxMessageSize, ba.maxMessageSize]).toEqual([500, 500]);
    await expect(ab.send(new Uint8Array(501))).rejects.toBeInstanceOf(TransportError);
  });

  it('holds messages that arrive before the first onMessage handler', async () => {
    const net = createMemoryNetwork();
    const { ab, ba } = await link(memoryTransport(net, 'a'), memoryTransport(net, 'b'));
    await ab.send(new Uint8Array([1]));
    await ab.send(new Uint8Array([2]));
    await new Promise((r) => setTimeout(r, 5));
    const got: number[] = [];
    ba.onMessage((m) => got.push(m[0] ?? -1));
    await ab.send(new Uint8Array([3]));
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual([1, 2, 3]);
  });

  it('copies on send and delays by latencyMs', async () => {
    const net = createMemoryNetwork();
    const { ab, ba } = await link(memoryTransport(net, 'a', { latencyMs: 30 }), memoryTransport(net, 'b'));
    const buf = new Uint8Array([9]);
    const t0 = performance.now();
    const got = nextMessage(ba);
    await ab.send(buf);
    buf[0] = 0;
    expect((await got)[0]).toBe(9);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('bytesPerSec paces the wire and send() waits on backpressure', async () => {
    const net = createMemoryNetwork();
    const opts = { bytesPerSec: 1e6, highWaterMark: 20_000 };
    const { ab } = await link(memoryTransport(net, 'a', opts), memoryTransport(net, 'b'));
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) await ab.send(new Uint8Array(5_000)); // 50 kB at 1 MB/s
    expect(ab.bufferedAmount).toBeLessThan(20_000);
    // At least 50 kB - 20 kB (still buffered) must have left the wire: 30 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('an aborted send wait rejects with the reason', async () => {
    const net = createMemoryNetwork();
    const { ab } = await link(
      memoryTransport(net, 'a', { bytesPerSec: 1e4, highWaterMark: 100 }),
      memoryTransport(net, 'b'),
    );
    const reason = new Error('enough');
    const ac = new AbortController();
    const p = ab.send(new Uint8Array(1000), { signal: ac.signal });
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    ab.close();
  });

  it('closeLink cuts both ends with PeerLostError and the peers can dial again', async () => {
    const net = createMemoryNetwork();
    const a = memoryTransport(net, 'a');
    const b = memoryTransport(net, 'b');
    const { ab, ba } = await link(a, b);
    const reasons = Promise.all([ab, ba].map((c) => new Promise<Error | undefined>((r) => c.onClose(r))));
    net.closeLink('a', 'b');
    const [ra, rb] = await reasons;
    expect(ra).toBeInstanceOf(PeerLostError);
    expect(rb).toBeInstanceOf(PeerLostError);
    await expect(ab.send(new Uint8Array(1))).rejects.toBeInstanceOf(TransportError);
    const again = await link(a, b);
    expect(again.ab.closed).toBe(false);
  });

  it('closePeer makes a peer vanish: links cut, id free, its transport closed', async () => {
    const net = createMemoryNetwork();
    const a = memoryTransport(net, 'a');
    const b = memoryTransport(net, 'b');
    const { ab } = await link(a, b);
    const closed = new Promise<Error | undefined>((r) => ab.onClose(r));
    net.closePeer('b');
    expect(await closed).toBeInstanceOf(PeerLostError);
    expect(net.peers()).toEqual(['a']);
    await expect(b.dial('a')).rejects.toBeInstanceOf(TransportError);
    await expect(a.dial('b')).rejects.toBeInstanceOf(PeerLostError);
    expect(() => memoryTransport(net, 'b')).not.toThrow();
  });

  it('graceful close delivers what was queued first', async () => {
    const net = createMemoryNetwork();
    const { ab, ba } = await link(memoryTransport(net, 'a', { latencyMs: 5 }), memoryTransport(net, 'b'));
    const got: number[] = [];
    ba.onMessage((m) => got.push(m.byteLength));
    const closed = new Promise<void>((r) => ba.onClose(() => r()));
    await ab.send(new Uint8Array(3));
    await ab.send(new Uint8Array(4));
    ab.close();
    await closed;
    expect(got).toEqual([3, 4]);
  });
});
