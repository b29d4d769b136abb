import type { AbortOptions, Connection, Transport, Unsubscribe } from '@peertrain/transport';

/*
 * Link tracing for the bench page: a Transport wrapper that records, while armed, every frame sent
 * (when, size, the channel's bufferedAmount before the send, how long the send's backpressure
 * held it) and every frame received. `summarizeTrace` turns that into the few figures that say
 * whether a link sat idle during an operation.
 */

export interface TraceEvent {
  /** performance.now() ms */
  t: number;
  dir: 'send' | 'recv';
  bytes: number;
  /** send only: the channel's bufferedAmount just before the send. */
  bufferedBefore: number;
  /** send only: ms the send's promise took (backpressure wait). */
  waitMs: number;
}

export class LinkTracer {
  armed = false;
  events: TraceEvent[] = [];

  arm(): void {
    this.events = [];
    this.armed = true;
  }

  disarm(): TraceEvent[] {
    this.armed = false;
    const e = this.events;
    this.events = [];
    return e;
  }

  wrapTransport(inner: Transport): Transport {
    const wrapConn = (c: Connection): Connection => this.wrapConnection(c);
    return {
      localId: inner.localId,
      dial: async (peerId: string, opts?: AbortOptions) => wrapConn(await inner.dial(peerId, opts)),
      onConnection: (handler: (conn: Connection) => void): Unsubscribe =>
        inner.onConnection((conn) => handler(wrapConn(conn))),
      close: () => inner.close(),
    };
  }

  private wrapConnection(c: Connection): Connection {
    const send = async (data: Uint8Array, opts?: AbortOptions): Promise<void> => {
      if (!this.armed) return c.send(data, opts);
      const t = performance.now();
      const bufferedBefore = c.bufferedAmount;
      await c.send(data, opts);
      this.events.push({
        t,
        dir: 'send',
        bytes: data.byteLength,
        bufferedBefore,
        waitMs: performance.now() - t,
      });
    };
    return {
      remoteId: c.remoteId,
      maxMessageSize: c.maxMessageSize,
      get bufferedAmount() {
        return c.bufferedAmount;
      },
      get closed() {
        return c.closed;
      },
      send,
      trySend: (data: Uint8Array): boolean => {
        const t = performance.now();
        const bufferedBefore = c.bufferedAmount;
        const sent = c.trySend(data);
        if (sent && this.armed)
          this.events.push({ t, dir: 'send', bytes: data.byteLength, bufferedBefore, waitMs: 0 });
        return sent;
      },
      onMessage: (handler: (data: Uint8Array) => void): Unsubscribe =>
        c.onMessage((data) => {
          if (this.armed)
            this.events.push({
              t: performance.now(),
              dir: 'recv',
              bytes: data.byteLength,
              bufferedBefore: 0,
              waitMs: 0,
            });
          handler(data);
        }),
      onClose: (handler: (reason?: Error) => void): Unsubscribe => c.onClose(handler),
      close: () => c.close(),
    };
  }
}

export interface TraceSummary {
  /** ms from the operation's start to the first frame sent / received, and last frame to the end. */
  firstSendMs: number;
  firstRecvMs: number;
  lastSendMs: number;
  lastRecvMs: number;
  sends: number;
  /** Sends made when the channel had nothing queued (after the first): the link had gone idle. */
  sendsOnEmpty: number;
  /** Sends whose backpressure wait took > 0.5 ms, and their total ms. */
  waits: number;
  waitMs: number;
  /** Receive gaps: inter-arrival gaps > 5 ms, their count and total ms; the largest. */
  recvGaps: number;
  recvGapMs: number;
  maxRecvGapMs: number;
  /** Received MB/s between the first and the last frame received. */
  recvMbps: number;
}

/** Figures of one armed window [t0, t1] (performance.now() ms). */
export function summarizeTrace(events: readonly TraceEvent[], t0: number, t1: number): TraceSummary {
  const sends = events.filter((e) => e.dir === 'send');
  const recvs = events.filter((e) => e.dir === 'recv');
  let gaps = 0;
  let gapMs = 0;
  let maxGap = 0;
  for (let i = 1; i < recvs.length; i++) {
    const g = (recvs[i]?.t ?? 0) - (recvs[i - 1]?.t ?? 0);
    maxGap = Math.max(maxGap, g);
    if (g > 5) {
      gaps++;
      gapMs += g;
    }
  }
  const waited = sends.filter((e) => e.waitMs > 0.5);
  const recvBytes = recvs.reduce((s, e) => s + e.bytes, 0);
  const span = (recvs.at(-1)?.t ?? 0) - (recvs[0]?.t ?? 0);
  return {
    firstSendMs: (sends[0]?.t ?? t0) - t0,
    firstRecvMs: (recvs[0]?.t ?? t0) - t0,
    lastSendMs: t1 - (sends.at(-1)?.t ?? t1),
    lastRecvMs: t1 - (recvs.at(-1)?.t ?? t1),
    sends: sends.length,
    sendsOnEmpty: sends.slice(1).filter((e) => e.bufferedBefore === 0).length,
    waits: waited.length,
    waitMs: waited.reduce((s, e) => s + e.waitMs, 0),
    recvGaps: gaps,
    recvGapMs: gapMs,
    maxRecvGapMs: maxGap,
    recvMbps: span > 0 ? recvBytes / 1e3 / span : 0,
  };
}
