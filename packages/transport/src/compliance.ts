import type { ControlMessage } from '@peertrain/protocol';
import { createMesh } from './mesh.ts';
import { abortable, abortReason, deadline } from '@peertrain/base';
import type { DType, TensorKey } from './types.ts';
import {
  ComplianceError,
  check,
  checkTensor,
  collect,
  connectMeshes,
  connectPair,
  describe,
  expectRejects,
  isNamed,
  makeTensor,
  mib,
  nextEvent,
  nextTask,
  pattern,
  sameBytes,
  until,
} from './compliance-support.ts';
import type { TransportPair } from './compliance-support.ts';

export { ComplianceError };
export type { TransportPair };

/*
 * One compliance suite for every Transport (memory in Node, PeerJS in Chromium) and the Mesh over it.
 * Framework-agnostic: no Node or test-runner APIs, so a browser page can run it as it is. Each case
 * makes its own pair of transports, throws ComplianceError (or the error it met) on failure, and may
 * resolve with a short note of what it measured.
 */

export interface ComplianceOptions {
  /** Upper bound asserted on bufferedAmount after every awaited send. Default 16 MiB. */
  maxBufferedAmount?: number;
  /** Bytes pushed through the backpressure case. Default 24 MiB. */
  backpressureBytes?: number;
  /** How long one expected event may take. Default 10 s. */
  eventTimeoutMs?: number;
}

export interface ComplianceCase {
  name: string;
  /** Resolves (optionally with a note of measured figures) or throws. */
  run(signal: AbortSignal): Promise<string | void>;
}

export interface ComplianceResult {
  name: string;
  ok: boolean;
  ms: number;
  note?: string;
  error?: string;
}

/** The cases, each independent (own pair, own cleanup). Run them in order, one at a time. */
export function transportComplianceCases(
  makePair: () => Promise<TransportPair>,
  opts: ComplianceOptions = {},
): ComplianceCase[] {
  const ms = opts.eventTimeoutMs ?? 10_000;
  const maxBuffered = opts.maxBufferedAmount ?? 16 * 2 ** 20;
  const bulkBytes = opts.backpressureBytes ?? 24 * 2 ** 20;

  const withPair =
    (fn: (pair: TransportPair, signal: AbortSignal) => Promise<string | void>) =>
    async (signal: AbortSignal): Promise<string | void> => {
      const pair = await makePair();
      try {
        return await fn(pair, signal);
      } finally {
        await pair.cleanup();
      }
    };

  const cases: ComplianceCase[] = [
    {
      name: 'transport: dial and accept',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        check(ab.remoteId === pair.b.localId, `dialled remoteId ${ab.remoteId}`);
        check(ba.remoteId === pair.a.localId, `accepted remoteId ${ba.remoteId}`);
        check(!ab.closed && !ba.closed, 'a fresh connection reports closed');
        check(ab.maxMessageSize >= 16_384, `maxMessageSize ${ab.maxMessageSize} < 16384`);
        const toB = collect(ba, 1, ms, signal);
        const toA = collect(ab, 1, ms, signal);
        await ab.send(new Uint8Array([1, 2, 3]), { signal });
        await ba.send(new Uint8Array([4, 5]), { signal });
        const [[x], [y]] = await Promise.all([toB, toA]);
        check(x !== undefined && sameBytes(x, new Uint8Array([1, 2, 3])), 'a -> b bytes');
        check(y !== undefined && sameBytes(y, new Uint8Array([4, 5])), 'b -> a bytes');
        return `maxMessageSize ${ab.maxMessageSize}`;
      }),
    },
    {
      name: 'transport: ordered delivery of 2000 messages',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        const n = 2000;
        const got = collect(ba, n, ms * 3, signal);
        for (let i = 0; i < n; i++) {
          const m = pattern(4 + (i % 97), i);
          new DataView(m.buffer).setUint32(0, i, true);
          await ab.send(m, { signal });
        }
        const msgs = await got;
        msgs.forEach((m, i) => {
          check(m.byteLength === 4 + (i % 97), `message ${i} has ${m.byteLength} bytes`);
          check(
            new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true) === i,
            `message ${i} out of order`,
          );
        });
      }),
    },
    {
      name: 'transport: exact bytes of odd sizes, up to maxMessageSize',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        const max = ab.maxMessageSize;
        const sizes = [1, 2, 3, 7, 13, 255, 1000, 4097, 16_385, 65_537, max - 1, max].filter((s) => s <= max);
        const got = collect(ba, sizes.length, ms, signal);
        for (const [i, s] of sizes.entries()) await ab.send(pattern(s, i + 1), { signal });
        const msgs = await got;
        sizes.forEach((s, i) => {
          const m = msgs[i];
          check(m !== undefined && sameBytes(m, pattern(s, i + 1)), `message of ${s} bytes arrived altered`);
        });
        return `sizes ${sizes.join(', ')}`;
      }),
    },
    {
      name: 'transport: oversize send rejected with TransportError, link survives',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        await expectRejects(
          ab.send(new Uint8Array(ab.maxMessageSize + 1), { signal }),
          ['TransportError'],
          'oversize send',
        );
        const got = collect(ba, 1, ms, signal);
        await ab.send(new Uint8Array([42]), { signal });
        const [m] = await got;
        check(m?.[0] === 42 && !ab.closed && !ba.closed, 'link unusable after an oversize send');
      }),
    },
    {
      name: 'transport: backpressure keeps bufferedAmount bounded',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        const size = Math.min(65_536, ab.maxMessageSize);
        const count = Math.ceil(bulkBytes / size);
        let received = 0;
        let inOrder = true;
        const all = nextEvent<void>(
          (done) =>
            ba.onMessage((m) => {
              const seq = new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true);
              if (seq !== received || m.byteLength !== size) inOrder = false;
              received++;
              if (received === count) done();
            }),
          `${count} bulk messages`,
          ms * 6,
          signal,
        );
        const msg = pattern(size, 7);
        let peak = 0;
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          new DataView(msg.buffer).setUint32(0, i, true);
          await ab.send(msg, { signal });
          peak = Math.max(peak, ab.bufferedAmount);
          check(peak <= maxBuffered, `bufferedAmount ${peak} > ${maxBuffered} after an awaited send`);
        }
        await all;
        const s = (performance.now() - t0) / 1000;
        check(inOrder, 'bulk messages arrived out of order or resized');
        return `${mib(count * size)} in ${s.toFixed(2)} s = ${((count * size) / s / 1e6).toFixed(1)} MB/s, peak bufferedAmount ${mib(peak)}`;
      }),
    },
    {
      name: 'transport: trySend queues at once below the high-water mark, declines otherwise',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        check(!ab.trySend(new Uint8Array(ab.maxMessageSize + 1)), 'an oversize trySend was accepted');
        // Fill until it declines: bounded by the high-water mark, every accepted message arrives.
        const size = Math.min(65_536, ab.maxMessageSize);
        const limit = Math.ceil(maxBuffered / size) + 4;
        let accepted = 0;
        while (accepted < limit && ab.trySend(pattern(size, accepted))) accepted++;
        check(accepted >= 1, 'trySend declined on an idle link');
        check(accepted < limit, `trySend accepted ${accepted} x ${size} bytes without declining`);
        const got = collect(ba, accepted + 1, ms * 3, signal);
        await ab.send(new Uint8Array([9]), { signal }); // waits for room, then queues
        const msgs = await got;
        check(
          msgs.slice(0, accepted).every((m, i) => sameBytes(m, pattern(size, i))) &&
            msgs[accepted]?.[0] === 9,
          'messages queued by trySend arrived altered or out of order',
        );
        ab.close();
        check(!ab.trySend(new Uint8Array([1])), 'trySend on a closed link was accepted');
        return `${accepted} x ${size} bytes queued before it declined`;
      }),
    },
    {
      name: 'transport: close propagates to the other side',
      run: withPair(async (pair, signal) => {
        const { ab, ba } = await connectPair(pair, ms, signal);
        const closed = nextEvent<Error | undefined>((done) => ba.onClose(done), 'onClose at b', ms, signal);
        const t0 = performance.now();
        ab.close();
        check(ab.closed, 'closed is false after close()');
        await closed;
        check(ba.closed, 'remote end not closed after onClose');
        await expectRejects(ab.send(new Uint8Array(1), { signal }), ['TransportError'], 'send after close');
        return `onClose after ${(performance.now() - t0).toFixed(0)} ms`;
      }),
    },
    {
      name: 'transport: closing a transport closes its connections',
      run: withPair(async (pair, signal) => {
        const { ba } = await connectPair(pair, ms, signal);
        const closed = nextEvent<Error | undefined>((done) => ba.onClose(done), 'onClose at b', ms, signal);
        await pair.a.close();
        await closed;
        await expectRejects(pair.a.dial(pair.b.localId, { signal }), ['TransportError'], 'dial after close');
      }),
    },
    {
      name: 'transport: dial to an unknown id fails with PeerLostError and the transport dials on; an aborted dial rejects with the reason',
      run: withPair(async (pair, signal) => {
        // PeerLostError, by name: a worker keeps dialling a coordinator that is not there yet on it.
        await expectRejects(
          pair.a.dial(`nobody-${Math.random().toString(36).slice(2)}`, {
            signal: deadline(signal, ms),
          }),
          ['PeerLostError'],
          'dial to an unknown id',
        );
        // The failed dial leaves the transport able to dial a peer that is there.
        const { ab } = await connectPair(pair, ms, signal);
        check(ab.remoteId === pair.b.localId, `dialled remoteId ${ab.remoteId} after a failed dial`);
        const reason = new Error('changed my mind');
        const ac = new AbortController();
        ac.abort(reason);
        const err = await expectRejects(
          pair.a.dial(pair.b.localId, { signal: ac.signal }),
          ['Error'],
          'aborted dial',
        );
        check(err === reason, 'aborted dial did not reject with the signal reason');
      }),
    },
    {
      name: 'mesh: multi-MB tensor chunked and reassembled exactly',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const key: TensorKey = { runId: 1, step: 2, microBatch: null, tag: 3 };
        const t = makeTensor('float32', [3, 333, 1001], key, 11); // [3, 333, 1001] float32 = 4.0 MB
        const t0 = performance.now();
        const got = mb.recvTensor(a, key, { signal });
        await ma.sendTensor(b, t, { signal });
        checkTensor(await got, t, '4 MB tensor');
        const sent = ma.stats().perPeer[b];
        check(
          sent !== undefined && sent.messagesSent === 1 && sent.bytesSent > t.data.byteLength,
          'sender stats',
        );
        const rcv = mb.stats().perPeer[a];
        check(rcv !== undefined && rcv.messagesReceived === 1 && rcv.framesRefused === 0, 'receiver stats');
        const s = (performance.now() - t0) / 1000;
        await ma.close();
        await mb.close();
        return `${mib(t.data.byteLength)} in ${s.toFixed(2)} s`;
      }),
    },
    {
      name: 'mesh: every frame of a message is on the link before the caller runs on',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const key: TensorKey = { runId: 1, step: 3, microBatch: 0, tag: 4 };
        // 64 KiB of float32 plus the header: more than one 64 KiB frame.
        const t = makeTensor('float32', [16, 1024], key, 5);
        const got = mb.recvTensor(a, key, { signal });
        const sent = ma.sendTensor(b, t, { signal });
        // Synchronously, as a pipeline stage that starts computing right after queueing.
        const bytes = ma.stats().perPeer[b]?.bytesSent ?? 0;
        check(
          bytes > t.data.byteLength,
          `only ${bytes} of ${t.data.byteLength}+ bytes left before the caller ran on`,
        );
        await sent;
        checkTensor(await got, t, '64 KiB tensor');
        await ma.close();
        await mb.close();
      }),
    },
    {
      name: 'mesh: concurrent tensors and a control message to the same peer',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const specs: [DType, number[]][] = [
          ['float32', [0]],
          ['int8', [1]],
          ['float16', [7]],
          ['int32', [70_001]],
          ['uint8', [300_001]],
          ['float32', [2, 125_001]],
        ];
        const tensors = specs.map(([dtype, shape], i) =>
          makeTensor(dtype, shape, { runId: 1, step: 5, microBatch: i, tag: 9 }, 100 + i),
        );
        const ping: ControlMessage = { type: 'ping', id: 77, t0: 1.5 };
        const control = nextEvent<ControlMessage>(
          (done) => mb.onControl((from, m) => from === a && done(m)),
          'the control message',
          ms,
          signal,
        );
        await Promise.all([
          ...tensors.map((t) => ma.sendTensor(b, t, { signal })),
          ma.sendControl(b, ping, { signal }),
        ]);
        for (const t of [...tensors].reverse()) {
          checkTensor(await mb.recvTensor(a, t, { signal }), t, `tensor ${t.dtype}[${t.shape.join(',')}]`);
        }
        const c = await control;
        check(c.type === 'ping' && c.id === 77 && c.t0 === 1.5, 'control message altered');
        await ma.close();
        await mb.close();
      }),
    },
    {
      name: 'mesh: back-to-back awaited sends all arrive',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const seen: number[] = [];
        mb.onControl((_from, m) => {
          if (m.type === 'ping') seen.push(m.id);
        });
        const n = 50;
        for (let i = 0; i < n; i++) {
          // Half without a signal: the shortest path back to the caller.
          await ma.sendControl(b, { type: 'ping', id: i, t0: 0 }, i % 2 === 0 ? {} : { signal });
          await ma.sendTensor(
            b,
            makeTensor('int32', [i], { runId: 6, step: i, microBatch: null, tag: 0 }, i),
            { signal },
          );
        }
        for (let i = 0; i < n; i++) {
          const key: TensorKey = { runId: 6, step: i, microBatch: null, tag: 0 };
          checkTensor(
            await mb.recvTensor(a, key, { signal }),
            makeTensor('int32', [i], key, i),
            `tensor ${i}`,
          );
        }
        await until(() => seen.length === n, `${n} control messages`, ms, signal);
        check(
          seen.every((id, i) => id === i),
          'control messages out of order',
        );
        await ma.close();
        await mb.close();
      }),
    },
    {
      name: 'mesh: recv before and after arrival',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const early: TensorKey = { runId: 1, step: 1, microBatch: null, tag: 1 };
        const late: TensorKey = { runId: 1, step: 1, microBatch: null, tag: 2 };
        const te = makeTensor('float32', [1000], early, 1);
        const tl = makeTensor('int32', [10], late, 2);
        const waiting = mb.recvTensor(a, early, { signal });
        await ma.sendTensor(b, te, { signal });
        checkTensor(await waiting, te, 'tensor awaited before it arrived');
        await ma.sendTensor(b, tl, { signal });
        await until(
          () => (mb.stats().perPeer[a]?.messagesReceived ?? 0) >= 2,
          'the second tensor',
          ms,
          signal,
        );
        checkTensor(await mb.recvTensor(a, late, { signal }), tl, 'tensor that arrived before recv');
        await ma.close();
        await mb.close();
      }),
    },
    {
      name: 'mesh: abort releases a pending recv with the reason',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const key: TensorKey = { runId: 2, step: 0, microBatch: 0, tag: 0 };
        const ac = new AbortController();
        const pending = mb.recvTensor(a, key, { signal: ac.signal });
        const reason = new Error('stop waiting');
        ac.abort(reason);
        const err = await expectRejects(pending, ['Error'], 'aborted recv');
        check(err === reason, 'aborted recv did not reject with the signal reason');
        // The aborted receiver is gone: the tensor is buffered for the next recv.
        const t = makeTensor('uint8', [5], key, 3);
        await ma.sendTensor(b, t, { signal });
        checkTensor(await mb.recvTensor(a, key, { signal }), t, 'tensor after an aborted recv');
        await ma.close();
        await mb.close();
      }),
    },
    {
      name: 'mesh: waiting receivers get PeerLostError when the peer goes',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const pending = mb.recvTensor(a, { runId: 3, step: 0, microBatch: null, tag: 0 }, { signal });
        const peerClosed = nextEvent<string>(
          (done) => mb.onPeer((id, ev) => ev === 'close' && done(id)),
          'onPeer close',
          ms,
          signal,
        );
        const errored = nextEvent<Error>((done) => mb.onError((_from, e) => done(e)), 'onError', ms, signal);
        await ma.close();
        await expectRejects(pending, ['PeerLostError'], 'recv from a closed peer');
        check((await peerClosed) === a, 'onPeer close names the wrong peer');
        check(isNamed(await errored, 'PeerLostError'), 'onError did not report PeerLostError');
        check(!mb.isConnected(a) && !mb.peers().includes(a), 'closed peer still listed');
        await expectRejects(
          mb.sendTensor(a, makeTensor('int8', [1], { runId: 3, step: 0, microBatch: null, tag: 1 }, 1)),
          ['PeerLostError'],
          'send to a closed peer',
        );
        await mb.close();
        void b;
      }),
    },
    {
      name: "mesh: sends racing the peer's departure fail with PeerLostError and nothing else",
      run: withPair(async (pair, signal) => {
        const { ma, mb, b } = await connectMeshes(pair, ms, signal);
        // a keeps sending while b leaves, yielding a task between sends so the link can change
        // state under it (the channel reads 'closing' before the close is reported). A survivor must be able to say whom it lost: no other error will do.
        let sent = 0;
        let failure: unknown = null;
        let left: Promise<void> | null = null;
        const deadline = performance.now() + ms;
        while (failure === null && performance.now() < deadline) {
          if (sent === 10) left = mb.close();
          const key: TensorKey = { runId: 11, step: sent, microBatch: null, tag: 0 };
          try {
            await ma.sendTensor(b, makeTensor('uint8', [64], key, sent), { signal });
            sent++;
          } catch (err) {
            failure = err;
          }
          await nextTask();
        }
        await left;
        check(failure !== null, `${sent} sends went through after the peer left`);
        check(isNamed(failure, 'PeerLostError'), `expected PeerLostError, got ${describe(failure)}`);
        check(!ma.isConnected(b), 'the lost peer is still connected');
        await ma.close();
        return `${sent - 10} sends after the peer began to leave`;
      }),
    },
    {
      name: 'mesh: a malformed raw frame is refused, the next message still delivered',
      run: withPair(async (pair, signal) => {
        const { ma, mb, a, b } = await connectMeshes(pair, ms, signal);
        const refused = nextEvent<Error>((done) => mb.onError((_from, e) => done(e)), 'onError', ms, signal);
        await ma.sendRaw(b, pattern(100, 5), { signal });
        const err = await refused;
        check(isNamed(err, 'ProtocolError'), `expected ProtocolError, got ${describe(err)}`);
        const key: TensorKey = { runId: 4, step: 0, microBatch: null, tag: 0 };
        const t = makeTensor('float32', [70_000], key, 9); // several frames
        await ma.sendTensor(b, t, { signal });
        checkTensor(await mb.recvTensor(a, key, { signal }), t, 'tensor after a refused frame');
        check(mb.stats().perPeer[a]?.framesRefused === 1, 'framesRefused is not 1');
        check(mb.isConnected(a) && ma.isConnected(b), 'link closed by a refused frame');
        await ma.close();
        await mb.close();
        return err.message;
      }),
    },
    {
      name: 'mesh: both sides connect at once and agree on working links',
      run: withPair(async (pair, signal) => {
        const ma = createMesh(pair.a);
        const mb = createMesh(pair.b);
        const a = pair.a.localId;
        const b = pair.b.localId;
        await Promise.all([ma.connect(b, { signal }), mb.connect(a, { signal })]);
        const key: TensorKey = { runId: 5, step: 0, microBatch: null, tag: 0 };
        const ta = makeTensor('float32', [50_000], key, 1);
        const tb = makeTensor('float32', [50_000], key, 2);
        await Promise.all([ma.sendTensor(b, ta, { signal }), mb.sendTensor(a, tb, { signal })]);
        checkTensor(await mb.recvTensor(a, key, { signal }), ta, 'a -> b');
        checkTensor(await ma.recvTensor(b, key, { signal }), tb, 'b -> a');
        const pong = nextEvent<ControlMessage>(
          (done) => ma.onControl((_f, m) => done(m)),
          'control b -> a',
          ms,
          signal,
        );
        await mb.sendControl(a, { type: 'leave', reason: 'done' }, { signal });
        check((await pong).type === 'leave', 'control message lost');
        await ma.close();
        await mb.close();
      }),
    },
  ];
  return cases;
}

/** Runs cases one at a time, each under its own timeout; never throws. */
export async function runComplianceCases(
  cases: ComplianceCase[],
  opts: { signal?: AbortSignal; caseTimeoutMs?: number } = {},
): Promise<ComplianceResult[]> {
  const results: ComplianceResult[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    const signal = AbortSignal.any([
      AbortSignal.timeout(opts.caseTimeoutMs ?? 120_000),
      ...(opts.signal ? [opts.signal] : []),
    ]);
    try {
      const note = await abortable(c.run(signal), signal);
      results.push({
        name: c.name,
        ok: true,
        ms: Math.round(performance.now() - t0),
        ...(note ? { note } : {}),
      });
    } catch (err) {
      const error =
        signal.aborted && !(err instanceof ComplianceError) ? describe(abortReason(signal)) : describe(err);
      results.push({ name: c.name, ok: false, ms: Math.round(performance.now() - t0), error });
    }
    if (opts.signal?.aborted) break;
  }
  return results;
}
