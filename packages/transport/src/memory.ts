import { IdTakenError, PeerLostError, TransportError } from '@peertrain/protocol';
import { sleep, throwIfAborted } from '@peertrain/base';
import { CloseSignal, DrainWaiters, Inbox, anySignal, assertSendable, emit, subscribe } from './internal.ts';
import type { AbortOptions, Connection, Transport, Unsubscribe } from './types.ts';

/*
 * In-memory transport for Node tests: reliable, ordered, asynchronous, with the same limits a data
 * channel has (maxMessageSize, bufferedAmount and backpressure) and a simulated wire:
 *
 *   send ──> [buffered: waits for the wire, bytesPerSec] ──> [in flight: latencyMs] ──> receiver
 *
 * bufferedAmount counts bytes not yet on the wire; send() resolves at once while bufferedAmount is
 * below highWaterMark, else once it has drained to half of it. Messages are copied on send, as a real
 * channel does. The network hub injects faults: cut one link, or make a whole peer vanish.
 */

export interface MemoryTransportOptions {
  /** Largest message; a link takes the smaller of its two ends' values. Default 262144 (Chromium's). */
  maxMessageSize?: number;
  /** One-way delay added to every message this end sends. Default 0. */
  latencyMs?: number;
  /** Wire speed of this end's outgoing direction. Default Infinity (a message leaves on the next tick). */
  bytesPerSec?: number;
  /** send() waits while bufferedAmount >= this, until it drains to half. Default 1 MiB. */
  highWaterMark?: number;
}

export interface MemoryNetwork {
  /** Ids of the transports on the network now. */
  peers(): string[];
  /**
   * Fault injection: cuts every connection between `a` and `b` at once. Undelivered messages are
   * lost; both ends see onClose with a PeerLostError. The transports stay up and may dial again.
   */
  closeLink(a: string, b: string): void;
  /**
   * Fault injection: `id` vanishes like a crashed tab. Its connections are cut (remote ends see
   * onClose with a PeerLostError), it leaves the network and its transport is closed.
   */
  closePeer(id: string): void;
}

/** One hub per test: transports on it can dial each other by id. */
export function createMemoryNetwork(): MemoryNetwork {
  return new Hub();
}

/** A Transport on `network` with id `localId`. Throws IdTakenError if the id is taken. */
export function memoryTransport(
  network: MemoryNetwork,
  localId: string,
  opts: MemoryTransportOptions = {},
): Transport {
  if (!(network instanceof Hub))
    throw new TransportError('memoryTransport needs a network from createMemoryNetwork()');
  const t = new MemoryTransport(network, localId, opts);
  network.register(t);
  return t;
}

class Hub implements MemoryNetwork {
  private readonly transports = new Map<string, MemoryTransport>();

  register(t: MemoryTransport): void {
    if (this.transports.has(t.localId)) {
      throw new IdTakenError(t.localId, `id "${t.localId}" is already taken on this memory network`);
    }
    this.transports.set(t.localId, t);
  }

  unregister(t: MemoryTransport): void {
    if (this.transports.get(t.localId) === t) this.transports.delete(t.localId);
  }

  get(id: string): MemoryTransport | undefined {
    return this.transports.get(id);
  }

  peers(): string[] {
    return [...this.transports.keys()];
  }

  closeLink(a: string, b: string): void {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const end of this.transports.get(x)?.connectionsTo(y) ?? []) {
        end.cut(new PeerLostError(y, `link ${x} <-> ${y} cut`));
      }
    }
  }

  closePeer(id: string): void {
    const t = this.transports.get(id);
    if (!t) return;
    for (const end of t.connectionsTo(null)) {
      end.remote?.cut(new PeerLostError(id, 'peer vanished'));
      end.cut(new TransportError(`transport ${id} was killed`));
    }
    void t.close();
  }
}

interface ImmediateHost {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
}

const pendingTasks: (() => void)[] = [];
let taskPort: MessagePort | null = null;

/**
 * Runs `fn` as a macrotask, without the clamp of setTimeout(0) (1 ms in Node; 4 ms in browsers once
 * timers nest, which made the link's "next tick" cost more wall time than the JS it was testing):
 * setImmediate in Node, a MessageChannel in browsers. Returns its cancel.
 */
function macrotask(fn: () => void): () => void {
  let live = true;
  const run = (): void => {
    if (live) fn();
  };
  const host = globalThis as ImmediateHost;
  if (host.setImmediate && host.clearImmediate) {
    const handle = host.setImmediate(run);
    const clear = host.clearImmediate;
    return () => {
      live = false;
      clear(handle);
    };
  }
  if (!taskPort) {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => pendingTasks.shift()?.();
    taskPort = channel.port2;
  }
  pendingTasks.push(run);
  taskPort.postMessage(null);
  return () => {
    live = false;
  };
}

/** FIFO of timed callbacks with non-decreasing times, driven by a single timer. */
class TimedQueue {
  private readonly items: { at: number; run: () => void }[] = [];
  private cancelTimer: (() => void) | null = null;
  private lastAt = 0;

  /** Time of the last item scheduled (or 0). */
  get tail(): number {
    return this.lastAt;
  }

  push(at: number, run: () => void): void {
    this.lastAt = Math.max(at, this.lastAt);
    this.items.push({ at: this.lastAt, run });
    if (this.items.length === 1) this.arm();
  }

  clear(): void {
    this.items.length = 0;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private arm(): void {
    const head = this.items[0];
    if (!head) return;
    const delay = head.at - performance.now();
    if (delay <= 0) {
      this.cancelTimer = macrotask(() => this.fire());
      return;
    }
    const timer = setTimeout(() => this.fire(), delay);
    this.cancelTimer = () => clearTimeout(timer);
  }

  private fire(): void {
    this.cancelTimer = null;
    const now = performance.now();
    while (this.items[0] && this.items[0].at <= now) this.items.shift()?.run();
    this.arm();
  }
}

class MemoryConnection implements Connection {
  readonly kind = 'memory';
  remote: MemoryConnection | null = null;
  private buffered = 0;
  private readonly drainQ = new TimedQueue();
  private readonly deliverQ = new TimedQueue();
  private wireFreeAt = 0;
  private readonly inbox = new Inbox();
  private readonly closeSignal = new CloseSignal();
  private readonly drained = new DrainWaiters();

  constructor(
    readonly remoteId: string,
    readonly maxMessageSize: number,
    private readonly opts: Required<MemoryTransportOptions>,
    private readonly onGone: (c: MemoryConnection) => void,
  ) {}

  get bufferedAmount(): number {
    return this.buffered;
  }

  get closed(): boolean {
    return this.closeSignal.closed;
  }

  async send(data: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    assertSendable(this, data, opts.signal);
    this.queue(data);
    if (this.buffered < this.opts.highWaterMark) return;
    await this.drained.wait(opts.signal);
  }

  trySend(data: Uint8Array): boolean {
    if (this.closed || data.byteLength > this.maxMessageSize) return false;
    if (this.buffered >= this.opts.highWaterMark) return false;
    this.queue(data);
    return true;
  }

  /** Puts a copy on the simulated wire: on it after the bytes ahead of it, delivered latencyMs later. */
  private queue(data: Uint8Array): void {
    const copy = data.slice();
    const len = copy.byteLength;
    this.buffered += len;
    const { bytesPerSec, latencyMs, highWaterMark } = this.opts;
    const start = Math.max(performance.now(), this.wireFreeAt);
    const onWire = start + (Number.isFinite(bytesPerSec) ? (len / bytesPerSec) * 1000 : 0);
    this.wireFreeAt = onWire;
    this.drainQ.push(onWire, () => {
      this.buffered -= len;
      if (this.buffered <= highWaterMark / 2) this.drained.wake();
    });
    this.deliverQ.push(onWire + latencyMs, () => this.remote?.receive(copy));
  }

  onMessage(handler: (data: Uint8Array) => void): Unsubscribe {
    return this.inbox.subscribe(handler);
  }

  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return this.closeSignal.subscribe(handler);
  }

  /** Graceful: what is already queued is still delivered, then the remote end closes. */
  close(): void {
    if (!this.markClosed(undefined)) return;
    const remote = this.remote;
    this.deliverQ.push(this.deliverQ.tail, () => remote?.remoteClosed());
  }

  receive(data: Uint8Array): void {
    if (!this.closed) this.inbox.push(data);
  }

  /** The remote end closed gracefully: our own undelivered messages are lost. */
  remoteClosed(): void {
    if (this.markClosed(undefined)) this.stopWire();
  }

  /** Abrupt close (fault injection, transport killed). */
  cut(reason: Error): void {
    if (this.markClosed(reason)) this.stopWire();
  }

  private markClosed(reason: Error | undefined): boolean {
    if (!this.closeSignal.fire(reason)) return false;
    this.drained.fail(reason ?? new TransportError(`link to ${this.remoteId} closed`));
    this.inbox.clear();
    this.onGone(this);
    return true;
  }

  private stopWire(): void {
    this.drainQ.clear();
    this.deliverQ.clear();
    this.buffered = 0;
  }
}

class MemoryTransport implements Transport {
  private readonly conns = new Set<MemoryConnection>();
  private readonly connHandlers = new Set<(conn: Connection) => void>();
  private readonly life = new AbortController();
  private readonly opts: Required<MemoryTransportOptions>;

  constructor(
    private readonly hub: Hub,
    readonly localId: string,
    opts: MemoryTransportOptions,
  ) {
    this.opts = {
      maxMessageSize: opts.maxMessageSize ?? 262_144,
      latencyMs: opts.latencyMs ?? 0,
      bytesPerSec: opts.bytesPerSec ?? Number.POSITIVE_INFINITY,
      highWaterMark: opts.highWaterMark ?? 1 << 20,
    };
  }

  connectionsTo(remoteId: string | null): MemoryConnection[] {
    return [...this.conns].filter((c) => remoteId === null || c.remoteId === remoteId);
  }

  async dial(peerId: string, opts: AbortOptions = {}): Promise<Connection> {
    throwIfAborted(opts.signal);
    if (this.life.signal.aborted) throw new TransportError(`transport ${this.localId} is closed`);
    const signal = anySignal(opts.signal, this.life.signal);
    // Handshake: one round trip.
    await sleep(2 * this.opts.latencyMs, signal);
    const remote = this.hub.get(peerId);
    if (!remote || remote === this) {
      throw new PeerLostError(peerId, 'peer unavailable: no such id on the memory network');
    }
    const max = Math.min(this.opts.maxMessageSize, remote.opts.maxMessageSize);
    const local = this.newConnection(peerId, max);
    const far = remote.newConnection(this.localId, max);
    local.remote = far;
    far.remote = local;
    emit(remote.connHandlers, far);
    return local;
  }

  onConnection(handler: (conn: Connection) => void): Unsubscribe {
    return subscribe(this.connHandlers, handler);
  }

  close(): Promise<void> {
    if (!this.life.signal.aborted) {
      this.life.abort(new TransportError(`transport ${this.localId} is closed`));
      this.hub.unregister(this);
      for (const c of [...this.conns]) c.close();
    }
    return Promise.resolve();
  }

  private newConnection(remoteId: string, max: number): MemoryConnection {
    const c = new MemoryConnection(remoteId, max, this.opts, (gone) => this.conns.delete(gone));
    this.conns.add(c);
    return c;
  }
}
