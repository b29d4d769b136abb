import { PeerLostError } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';
import type { TensorMessage } from '@peertrain/transport';
import { describe, expect, it } from 'vitest';
import { useTestHubs } from './testMesh.ts';

// The double must itself be right before the collective's tests can lean on it.

const msg = (tag: number, value: number): TensorMessage => ({
  runId: 1,
  step: 0,
  microBatch: null,
  tag,
  dtype: 'uint8',
  shape: [1],
  data: Uint8Array.of(value),
});
const key = (tag: number) => ({ runId: 1, step: 0, microBatch: null, tag });

const newHub = useTestHubs();

describe('TestHub mesh double', () => {
  it('buffers early arrivals, copies on send and matches exact keys', async () => {
    const h = newHub();
    const a = h.mesh('a');
    const b = h.mesh('b');
    await a.connect('b');
    const m = msg(7, 1);
    await a.sendTensor('b', m);
    m.data[0] = 99; // must not reach b
    await new Promise((r) => setTimeout(r, 0));
    expect(b.bufferedMessages()).toBe(1);
    const got = await b.recvTensor('a', key(7));
    expect(got.data[0]).toBe(1);
    expect(b.bufferedMessages()).toBe(0);
    expect(a.stats().perPeer.b?.bytesSent).toBe(1);
    expect(b.stats().total.bytesReceived).toBe(1);
  });

  it('reorders different keys under jitter but keeps one key in order', async () => {
    const h = newHub({ jitterMs: 5 });
    const a = h.mesh('a');
    const b = h.mesh('b');
    await a.connect('b');
    const order: number[] = [];
    const received = Array.from({ length: 20 }, (_, tag) =>
      b.recvTensor('a', key(tag)).then(() => order.push(tag)),
    );
    const sameKey = Array.from({ length: 10 }, () => b.recvTensor('a', key(100)));
    for (let tag = 0; tag < 20; tag++) await a.sendTensor('b', msg(tag, tag));
    for (let v = 0; v < 10; v++) await a.sendTensor('b', msg(100, v));
    await Promise.all(received);
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
    const values = (await Promise.all(sameKey)).map((m) => m.data[0]);
    expect(values).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('withdraws an aborted receiver and rejects waiters of a killed peer with PeerLostError', async () => {
    const h = newHub();
    const a = h.mesh('a');
    h.mesh('b');
    h.mesh('c');
    await expect(a.recvTensor('b', key(1))).rejects.toThrow('not connected');
    await expect(a.sendTensor('b', msg(1, 0))).rejects.toThrow('not connected');
    h.linkAll(['a', 'b', 'c']);
    expect(a.peers()).toEqual(['b', 'c']);
    const ac = new AbortController();
    const aborted = a.recvTensor('b', key(1), { signal: ac.signal });
    const lost = a.recvTensor('b', key(2));
    expect(a.pendingReceivers()).toBe(2);
    ac.abort(new AbortError('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(a.pendingReceivers()).toBe(1);
    const closes: string[] = [];
    a.onPeer((id, ev) => closes.push(`${id}:${ev}`));
    h.kill('b');
    await expect(lost).rejects.toBeInstanceOf(PeerLostError);
    expect(a.pendingReceivers()).toBe(0);
    expect(closes).toEqual(['b:close']);
    await expect(a.recvTensor('b', key(3))).rejects.toBeInstanceOf(PeerLostError);
    await expect(a.sendTensor('b', msg(3, 0))).rejects.toBeInstanceOf(PeerLostError);
  });
});
