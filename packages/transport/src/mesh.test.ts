import { PeerLostError, ProtocolError, encodeMessage } from '@peertrain/protocol';
import type { ControlMessage } from '@peertrain/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryNetwork, memoryTransport } from './memory.ts';
import type { MemoryNetwork, MemoryTransportOptions } from './memory.ts';
import { createMesh } from './mesh.ts';
import type { MeshOptions } from './mesh.ts';
import type { Mesh, TensorKey, TensorMessage, Transport } from './types.ts';

const key: TensorKey = { runId: 1, step: 0, microBatch: null, tag: 0 };
const f32 = (n: number, k: TensorKey = key): TensorMessage => ({
  ...k,
  dtype: 'float32',
  shape: [n],
  data: new Uint8Array(new Float32Array(n).map((_, i) => i).buffer),
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups) await c();
  cleanups = [];
});

async function pair(
  tOpts: MemoryTransportOptions = {},
  mOpts: MeshOptions = {},
): Promise<{ net: MemoryNetwork; ta: Transport; ma: Mesh; mb: Mesh }> {
  const net = createMemoryNetwork();
  const ta = memoryTransport(net, 'a', tOpts);
  const tb = memoryTransport(net, 'b', tOpts);
  const ma = createMesh(ta, mOpts);
  const mb = createMesh(tb, mOpts);
  cleanups.push(async () => {
    await Promise.all([ma.close(), mb.close()]);
    await Promise.all([ta.close(), tb.close()]);
  });
  await ma.connect('b');
  await new Promise((r) => setTimeout(r, 1));
  return { net, ta, ma, mb };
}

describe('createMesh over memoryTransport', () => {
  it('counts bytes and messages on both sides', async () => {
    const { ma, mb } = await pair();
    await ma.sendTensor('b', f32(100_000));
    await mb.recvTensor('a', key);
    const s = ma.stats().perPeer.b;
    const r = mb.stats().perPeer.a;
    expect(s?.messagesSent).toBe(1);
    expect(s?.bytesSent).toBeGreaterThan(400_000);
    expect(r?.bytesReceived).toBe(s?.bytesSent);
    expect(r?.messagesReceived).toBe(1);
    expect(mb.stats().total.bytesReceived).toBe(r?.bytesReceived);
  });

  it('sends frames no larger than the link maxMessageSize', async () => {
    const { ma, mb } = await pair({ maxMessageSize: 1_000 });
    const sizes: number[] = [];
    mb.onError(() => sizes.push(-1));
    await ma.sendTensor('b', f32(10_000));
    const got = await mb.recvTensor('a', key);
    expect(got.data).toEqual(f32(10_000).data);
    expect(ma.stats().perPeer.b?.bytesSent).toBeGreaterThan(40_000);
    expect(sizes).toEqual([]);
  });

  it('control messages overtake a large tensor at frame boundaries', async () => {
    const { ma, mb } = await pair({ bytesPerSec: 5e6, maxMessageSize: 16_384 });
    const order: string[] = [];
    mb.onControl(() => order.push('control'));
    const got = mb.recvTensor('a', key).then(() => order.push('tensor'));
    const big = ma.sendTensor('b', f32(500_000)); // 2 MB, about 400 ms on this wire
    // The control goes once the tensor's first frames have landed (a fixed 5 ms wait was, on a
    // loaded machine, sometimes after its last).
    while ((mb.stats().perPeer.a?.bytesReceived ?? 0) === 0) await new Promise((r) => setTimeout(r, 1));
    const ping: ControlMessage = { type: 'ping', id: 1, t0: 0 };
    await ma.sendControl('b', ping);
    await Promise.all([big, got]);
    expect(order).toEqual(['control', 'tensor']);
  });

  it('an abort before the first frame leaves removes the message from the queue', async () => {
    const { ma, mb } = await pair({ bytesPerSec: 10e6, highWaterMark: 65_536 });
    const first = ma.sendTensor('b', f32(250_000)); // 1 MB keeps the pump busy
    const ac = new AbortController();
    const second = ma.sendTensor('b', f32(10, { ...key, tag: 2 }), { signal: ac.signal });
    ac.abort(new Error('never mind'));
    await expect(second).rejects.toThrow('never mind');
    await first;
    await mb.recvTensor('a', key);
    await new Promise((r) => setTimeout(r, 10));
    expect(mb.stats().perPeer.a?.messagesReceived).toBe(1);
  });

  it('refuses a hostile chunk sequence and counts it; the link stays up', async () => {
    const { ma, mb } = await pair();
    const errors: ProtocolError[] = [];
    mb.onError((_f, e) => {
      if (e instanceof ProtocolError) errors.push(e);
    });
    const frames = encodeMessage(
      { kind: 'tensor', tensor: f32(50_000) },
      { maxFrameBytes: 65_536, msgId: 9 },
    );
    await ma.sendRaw('b', frames[1] ?? new Uint8Array()); // chunk 1 of a message never started
    await ma.sendRaw('b', new Uint8Array(ma.stats().total.bytesSent > 0 ? 3 : 4)); // too short
    await new Promise((r) => setTimeout(r, 5));
    expect(errors.map((e) => e.code)).toEqual(['bad-chunk', 'bad-length']);
    expect(mb.stats().perPeer.a?.framesRefused).toBe(2);
    await ma.sendTensor('b', f32(3));
    expect((await mb.recvTensor('a', key)).shape).toEqual([3]);
  });

  it('an oversize raw send fails alone', async () => {
    const { ma, mb } = await pair({ maxMessageSize: 2_000 });
    await expect(ma.sendRaw('b', new Uint8Array(2_001))).rejects.toThrow(/maxMessageSize/);
    await ma.sendTensor('b', f32(1_000));
    expect((await mb.recvTensor('a', key)).data.byteLength).toBe(4_000);
  });

  it('drops tensors past maxMailboxBytes with a ProtocolError', async () => {
    const { ma, mb } = await pair({}, { maxMailboxBytes: 10_000 });
    const errors: string[] = [];
    mb.onError((_f, e) => errors.push(e.name));
    await ma.sendTensor('b', f32(2_000, { ...key, tag: 1 })); // 8 kB, held
    await ma.sendTensor('b', f32(1_000, { ...key, tag: 2 })); // 4 kB, over the cap
    await new Promise((r) => setTimeout(r, 5));
    expect(errors).toEqual(['ProtocolError']);
    expect((await mb.recvTensor('a', { ...key, tag: 1 })).shape).toEqual([2_000]);
  });

  it('a cut link rejects waiting receivers and pending sends with PeerLostError', async () => {
    const { net, ma, mb } = await pair({ bytesPerSec: 1e6 });
    const lost: string[] = [];
    mb.onPeer((id, ev) => lost.push(`${id}:${ev}`));
    const waiting = mb.recvTensor('a', key);
    const sending = ma.sendTensor('b', f32(500_000, { ...key, tag: 5 }));
    net.closeLink('a', 'b');
    await expect(waiting).rejects.toBeInstanceOf(PeerLostError);
    await expect(sending).rejects.toBeInstanceOf(PeerLostError);
    expect(lost).toEqual(['a:close']);
    expect(ma.peers()).toEqual([]);
    await expect(mb.recvTensor('a', key)).rejects.toBeInstanceOf(PeerLostError);
    // Reconnect after the fault.
    await mb.connect('a');
    await mb.sendTensor('a', f32(1));
    expect((await ma.recvTensor('b', key)).shape).toEqual([1]);
  });

  it('a tensor that arrived before its sender left can still be received', async () => {
    const { ma, mb } = await pair();
    await ma.sendTensor('b', f32(10));
    await new Promise((r) => setTimeout(r, 5));
    await ma.close();
    await new Promise((r) => setTimeout(r, 5));
    expect(mb.isConnected('a')).toBe(false);
    expect((await mb.recvTensor('a', key)).shape).toEqual([10]);
  });

  it('recv while a dial is in progress waits for it; a failed dial rejects it', async () => {
    const net = createMemoryNetwork();
    const ta = memoryTransport(net, 'a', { latencyMs: 10 });
    const ma = createMesh(ta);
    cleanups.push(async () => {
      await ma.close();
      await ta.close();
    });
    const dial = ma.connect('ghost');
    const waiting = ma.recvTensor('ghost', key);
    await expect(dial).rejects.toBeInstanceOf(PeerLostError);
    await expect(waiting).rejects.toBeInstanceOf(PeerLostError);
  });

  it('a caller that shared a dial its first caller gave up dials again under its own signal', async () => {
    const net = createMemoryNetwork();
    const [ta, tb] = [memoryTransport(net, 'a'), memoryTransport(net, 'b')];
    let dials = 0;
    // The first dial hangs until aborted and settles a little later (a PeerJS offer nobody answered).
    const t: Transport = {
      localId: ta.localId,
      dial: (peerId, opts) => {
        if (++dials > 1) return ta.dial(peerId, opts);
        return new Promise((_, reject) => {
          const s = opts?.signal;
          s?.addEventListener('abort', () => setTimeout(() => reject(s.reason as Error), 5), { once: true });
        });
      },
      onConnection: (handler) => ta.onConnection(handler),
      close: () => ta.close(),
    };
    const [ma, mb] = [createMesh(t), createMesh(tb)];
    cleanups.push(async () => {
      await Promise.all([ma.close(), mb.close()]);
      await Promise.all([ta.close(), tb.close()]);
    });
    const first = new AbortController();
    const gaveUp = ma.connect('b', { signal: first.signal });
    const later = ma.connect('b', { signal: new AbortController().signal }); // shares the dial
    first.abort(new Error('the first caller gave up'));
    await expect(gaveUp).rejects.toThrow('the first caller gave up');
    await later;
    expect(ma.isConnected('b')).toBe(true);
    expect(dials).toBe(2);
  });

  it('a send during a dial waits for the link, with the payload as it was when sent', async () => {
    const net = createMemoryNetwork();
    const ta = memoryTransport(net, 'a', { latencyMs: 10 });
    const tb = memoryTransport(net, 'b');
    const ma = createMesh(ta);
    const mb = createMesh(tb);
    cleanups.push(async () => {
      await Promise.all([ma.close(), mb.close(), ta.close(), tb.close()]);
    });
    const dial = ma.connect('b');
    const msg = f32(4);
    const sent = ma.sendTensor('b', msg);
    msg.data.fill(0xff);
    await Promise.all([dial, sent]);
    const got = await mb.recvTensor('a', key);
    expect(got.shape).toEqual([4]);
    expect([...new Float32Array(got.data.slice().buffer)]).toEqual([0, 1, 2, 3]);
  });

  it('sendTensor reads the payload before it returns', async () => {
    const { ma, mb } = await pair();
    const msg = f32(70_000);
    const sent = ma.sendTensor('b', msg);
    msg.data.fill(0xff);
    await sent;
    const got = new Float32Array((await mb.recvTensor('a', key)).data.slice().buffer);
    expect(got[69_999]).toBe(69_999);
  });

  it('a throwing subscriber does not stop delivery to the others', async () => {
    const { ma, mb } = await pair();
    const seen: string[] = [];
    const unhandled: unknown[] = [];
    const onErr = (e: unknown): void => void unhandled.push(e);
    process.on('uncaughtException', onErr);
    try {
      mb.onControl(() => {
        throw new Error('buggy handler');
      });
      mb.onControl((_f, m) => seen.push(m.type));
      await ma.sendControl('b', { type: 'leave', reason: 'x' });
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      process.off('uncaughtException', onErr);
    }
    expect(seen).toEqual(['leave']);
    expect(unhandled).toHaveLength(1);
  });

  it('mesh.close rejects waiters and refuses new work', async () => {
    const { ma } = await pair();
    const waiting = ma.recvTensor('b', key);
    await ma.close();
    await expect(waiting).rejects.toBeInstanceOf(PeerLostError);
    await expect(ma.sendTensor('b', f32(1))).rejects.toBeInstanceOf(PeerLostError);
    await expect(ma.connect('b')).rejects.toThrow(/closed/);
  });
});
