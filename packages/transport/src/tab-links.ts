import { PeerLostError, TransportError } from '@peertrain/protocol';
import { abortReason, abortable, throwIfAborted } from '@peertrain/base';
import { CloseSignal, DrainWaiters, Inbox, anySignal, assertSendable, emit, subscribe } from './internal.ts';
import type { AbortOptions, Connection, Transport, Unsubscribe } from './types.ts';

/*
 * Tab links: tabs of one browser profile talk through MessagePorts instead of WebRTC.
 *
 * Tabs of one browser share one network-service process: every WebRTC byte between them is
 * encrypted, framed by SCTP, sent over UDP to the machine itself and decrypted again, all through
 * that one process. Measured between two tabs of one profile on 2 cores: a MessagePort carries
 * 330-820 MB/s (transferred ArrayBuffers) and answers in 0.2 ms; a data channel 12-25 MB/s and 0.5-0.9
 * ms. As a collective library uses shared memory inside a machine and the network across machines,
 * a tab reaches the tabs of its own profile through a port and everyone else through WebRTC.
 *
 * The broker (a SharedWorker in browsers, so one per profile and build) knows which peer ids are
 * tabs of this profile. A dial asks it first: for a tab it knows, it makes a MessageChannel and
 * hands one port to each side; for any other id it answers "absent" and the dial goes to the inner
 * transport (PeerJS). Data then flows tab to tab; the broker only introduces.
 *
 * A port has no close event. A tab that closes its transport or goes away (pagehide) says so on each
 * port. A tab that dies without a word (killed, crashed) is noticed through a lock: each tab holds a
 * lock named after its id for as long as it lives, and the other end of every link (and the broker)
 * waits for that lock; the browser grants it the moment the holder's tab is gone.
 */

/** Liveness of tabs through named locks (navigator.locks in browsers). */
export interface TabLiveness {
  /** Takes `name` and holds it; resolves once held, with the function that lets it go. */
  hold(name: string): Promise<() => void>;
  /** Resolves when no one holds `name` any more (its holder is gone); rejects on abort. */
  gone(name: string, signal: AbortSignal): Promise<void>;
}

/** Liveness over the Web Locks API: a tab's lock is released by the browser when the tab goes. */
export function locksLiveness(locks: LockManager): TabLiveness {
  return {
    hold: (name) =>
      new Promise((held) => {
        void locks.request(name, () => new Promise<void>((release) => held(release)));
      }),
    gone: (name, signal) => locks.request(name, { signal }, () => undefined).then(() => undefined),
  };
}

/** The lock a tab holds while it lives: one per transport (token), so a reloaded tab is a new one. */
export const tabLockName = (id: string, token: string): string => `peertrain-tab/${id}/${token}`;

/** Messages between a tab and the broker (structured clones; ports ride along as transfers). */
type ToBroker =
  | { t: 'register'; id: string; token: string }
  | { t: 'unregister'; id: string; token: string }
  | { t: 'dial'; nonce: number; from: string; to: string };
type FromBroker =
  | { t: 'registered' }
  | { t: 'incoming'; from: string; token: string }
  | { t: 'dialed'; nonce: number; token: string }
  | { t: 'absent'; nonce: number };

/** Messages on a link's port besides data (data travels as a transferred ArrayBuffer). */
type LinkControl = { t: 'hello' } | { t: 'ack'; bytes: number } | { t: 'close' };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

/**
 * The broker: which peer ids are tabs of this profile, and introductions between them. Runs in a
 * SharedWorker (tab-broker.worker.ts); tests run it in-process over MessageChannels.
 */
export class TabBroker {
  private readonly tabs = new Map<string, { port: MessagePort; token: string; watch: AbortController }>();

  constructor(private readonly liveness: TabLiveness) {}

  /** Serves one tab's port. */
  attach(port: MessagePort): void {
    port.addEventListener('message', (ev: MessageEvent) => this.onMessage(port, ev.data));
    port.start();
  }

  /** Ids of the tabs registered now. */
  ids(): string[] {
    return [...this.tabs.keys()];
  }

  private onMessage(port: MessagePort, msg: unknown): void {
    if (!isRecord(msg)) return;
    if (msg.t === 'register' && isString(msg.id) && isString(msg.token))
      this.register(port, msg.id, msg.token);
    else if (msg.t === 'unregister' && isString(msg.id) && isString(msg.token))
      this.forget(msg.id, msg.token);
    else if (msg.t === 'dial' && typeof msg.nonce === 'number' && isString(msg.from) && isString(msg.to)) {
      this.introduce(port, msg.nonce, msg.from, msg.to);
    }
  }

  private register(port: MessagePort, id: string, token: string): void {
    this.tabs.get(id)?.watch.abort();
    const watch = new AbortController();
    this.tabs.set(id, { port, token, watch });
    this.liveness.gone(tabLockName(id, token), watch.signal).then(
      () => this.forget(id, token),
      () => undefined, // unregistered or replaced first
    );
    post(port, { t: 'registered' });
  }

  private forget(id: string, token: string): void {
    const tab = this.tabs.get(id);
    if (tab?.token !== token) return;
    tab.watch.abort();
    this.tabs.delete(id);
  }

  private introduce(port: MessagePort, nonce: number, from: string, to: string): void {
    const caller = this.tabs.get(from);
    const callee = this.tabs.get(to);
    if (!caller || caller.port !== port || !callee || from === to) {
      post(port, { t: 'absent', nonce });
      return;
    }
    const { port1, port2 } = new MessageChannel();
    post(callee.port, { t: 'incoming', from, token: caller.token }, [port2]);
    post(port, { t: 'dialed', nonce, token: callee.token }, [port1]);
  }
}

function post(
  port: MessagePort,
  msg: ToBroker | FromBroker | LinkControl,
  transfer: Transferable[] = [],
): void {
  port.postMessage(msg, transfer);
}

export interface TabLinksOptions {
  /** A port to the broker (a SharedWorker's port in browsers). */
  broker: MessagePort;
  liveness: TabLiveness;
  /** How long the broker may take to confirm the registration. Default 5 s. */
  registerTimeoutMs?: number;
  /** Unacknowledged bytes a link lets through before send waits. Default 8 MiB. */
  highWaterMark?: number;
  /** Largest message on a tab link. Default 1 MiB. */
  maxMessageSize?: number;
  /** Told why the tab links are off when the broker does not answer (then every dial is inner's). */
  onUnavailable?: (err: Error) => void;
}

/** A transport with tab links; `ready` says whether the broker took it. */
export interface TabLinks extends Transport {
  /**
   * Resolves true once the broker has registered this tab; false when it did not answer within
   * registerTimeoutMs (TransportError to onUnavailable) or the transport closed first: every dial
   * then goes to the inner transport.
   */
  readonly ready: Promise<boolean>;
}

/**
 * `inner` with tab links: dials to tabs of this profile go through MessagePorts, every other dial
 * to `inner`. Returned at once, so whoever builds on it (the mesh) hears every connection `inner`
 * accepts from the start; it registers with the broker meanwhile, and dials wait for that.
 */
export function tabLinksTransport(inner: Transport, opts: TabLinksOptions): TabLinks {
  return new TabLinksTransport(inner, opts);
}

/** How long a link whose remote lock came free waits for the remote's "close" before it gives up. */
const GONE_GRACE_MS = 100;

/**
 * Bytes a receiver takes in before it acknowledges them, and how long it waits at most to
 * acknowledge fewer. An acknowledgement is a postMessage: one per message (at the next task, with
 * 256 KiB) cost a pipeline stage 2.5% of its thread (CPU profile, 1F1B P=4 M=8), 1.1-2.1% so. The
 * sender stops at its high-water mark (8 MiB), far above both.
 */
const ACK_EVERY_BYTES = 1 << 20;
const ACK_DELAY_MS = 5;

class TabLinksTransport implements TabLinks {
  readonly localId: string;
  readonly ready: Promise<boolean>;
  private readonly token = Math.random().toString(36).slice(2) + Date.now().toString(36);
  private readonly life = new AbortController();
  private readonly conns = new Set<PortConnection>();
  private readonly connHandlers = new Set<(conn: Connection) => void>();
  private readonly dials = new Map<number, (answer: { port: MessagePort; token: string } | null) => void>();
  private readonly unsubInner: Unsubscribe;
  private readonly onBroker = (ev: MessageEvent): void => this.fromBroker(ev);
  private release: (() => void) | null = null;
  /** Settles the registration once the broker confirms it. */
  private registered: (() => void) | null = null;
  private nonce = 0;

  constructor(
    private readonly inner: Transport,
    private readonly opts: TabLinksOptions,
  ) {
    this.localId = inner.localId;
    this.unsubInner = inner.onConnection((conn) => emit(this.connHandlers, conn));
    opts.broker.addEventListener('message', this.onBroker);
    opts.broker.start();
    this.ready = this.register().then(
      () => !this.life.signal.aborted,
      (err: unknown) => {
        this.leaveBroker();
        this.opts.onUnavailable?.(err instanceof Error ? err : new TransportError(String(err)));
        return false;
      },
    );
    globalThis.addEventListener?.('pagehide', this.onPageHide);
  }

  private async register(): Promise<void> {
    const release = await this.opts.liveness.hold(tabLockName(this.localId, this.token));
    if (this.life.signal.aborted) {
      release();
      return;
    }
    this.release = release;
    const ms = this.opts.registerTimeoutMs ?? 5_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TransportError(`the tab-link broker did not answer within ${ms} ms`)),
        ms,
      );
      this.registered = () => {
        clearTimeout(timer);
        resolve();
      };
      post(this.opts.broker, { t: 'register', id: this.localId, token: this.token });
    });
  }

  /** No more tab links: leaves the broker and lets the lock go (the inner transport goes on). */
  private leaveBroker(): void {
    if (this.left) return;
    this.left = true;
    post(this.opts.broker, { t: 'unregister', id: this.localId, token: this.token });
    this.opts.broker.removeEventListener('message', this.onBroker);
    for (const answer of this.dials.values()) answer(null);
    this.dials.clear();
    this.registered?.(); // a registration still waiting ends now (ready: false once closed)
    this.release?.();
    this.release = null;
  }

  private left = false;

  private fromBroker(ev: MessageEvent): void {
    const msg: unknown = ev.data;
    if (!isRecord(msg) || this.life.signal.aborted) return;
    if (msg.t === 'registered') this.registered?.();
    else if (msg.t === 'incoming' && isString(msg.from) && isString(msg.token) && ev.ports[0]) {
      const conn = this.link(msg.from, ev.ports[0], msg.token);
      conn.sendControl({ t: 'hello' });
      emit(this.connHandlers, conn);
    } else if ((msg.t === 'dialed' || msg.t === 'absent') && typeof msg.nonce === 'number') {
      const answer = this.dials.get(msg.nonce);
      this.dials.delete(msg.nonce);
      const port = ev.ports[0];
      answer?.(msg.t === 'dialed' && port && isString(msg.token) ? { port, token: msg.token } : null);
    }
  }

  async dial(peerId: string, opts: AbortOptions = {}): Promise<Connection> {
    throwIfAborted(opts.signal);
    this.assertOpen();
    const signal = anySignal(opts.signal, this.life.signal);
    if (!(await abortable(this.ready, signal)) || this.left) return this.inner.dial(peerId, opts);
    const nonce = ++this.nonce;
    const answer = await new Promise<{ port: MessagePort; token: string } | null>((resolve, reject) => {
      const onAbort = (): void => {
        this.dials.delete(nonce);
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.dials.set(nonce, (a) => {
        signal.removeEventListener('abort', onAbort);
        resolve(a);
      });
      post(this.opts.broker, { t: 'dial', nonce, from: this.localId, to: peerId });
    });
    if (!answer) return this.inner.dial(peerId, opts);
    const conn = this.link(peerId, answer.port, answer.token);
    try {
      await conn.opened(signal);
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }

  onConnection(handler: (conn: Connection) => void): Unsubscribe {
    return subscribe(this.connHandlers, handler);
  }

  async close(): Promise<void> {
    globalThis.removeEventListener?.('pagehide', this.onPageHide);
    this.detach();
    await this.inner.close();
  }

  /** Leaves the broker and closes every tab link; `inner` stays as it is. */
  private detach(): void {
    if (this.life.signal.aborted) return;
    this.life.abort(new TransportError(`transport ${this.localId} is closed`));
    this.leaveBroker();
    this.unsubInner();
    for (const c of [...this.conns]) c.close();
  }

  // The inner transport has its own pagehide; this one tells the tab links and the broker now.
  private readonly onPageHide = (): void => this.detach();

  private assertOpen(): void {
    if (this.life.signal.aborted) throw new TransportError(`transport ${this.localId} is closed`);
  }

  private link(remoteId: string, port: MessagePort, remoteToken: string): PortConnection {
    const conn = new PortConnection(remoteId, port, {
      maxMessageSize: this.opts.maxMessageSize ?? 1 << 20,
      highWaterMark: this.opts.highWaterMark ?? 8 << 20,
      onGone: (c) => this.conns.delete(c),
    });
    this.conns.add(conn);
    // A tab that closes its transport says so on the port and lets its lock go at about the same
    // time: the word, if it comes, decides how the link closed.
    this.opts.liveness.gone(tabLockName(remoteId, remoteToken), conn.lifeSignal).then(
      () => setTimeout(() => conn.cut(new PeerLostError(remoteId, 'its tab is gone')), GONE_GRACE_MS),
      () => undefined, // the link closed first
    );
    return conn;
  }
}

/** One tab link: a MessagePort carrying transferred ArrayBuffers, with acknowledged flow control. */
class PortConnection implements Connection {
  readonly kind = 'tab';
  readonly maxMessageSize: number;
  private readonly highWaterMark: number;
  private readonly life = new AbortController();
  private readonly inbox = new Inbox();
  private readonly closeSignal = new CloseSignal();
  private readonly drained = new DrainWaiters();
  private readonly hello = new DrainWaiters();
  private readonly onGone: (c: PortConnection) => void;
  private greeted = false;
  /** Sent and not yet acknowledged by the other end. */
  private inflight = 0;
  /** Received and not yet acknowledged. */
  private unacked = 0;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly remoteId: string,
    private readonly port: MessagePort,
    opts: { maxMessageSize: number; highWaterMark: number; onGone: (c: PortConnection) => void },
  ) {
    this.maxMessageSize = opts.maxMessageSize;
    this.highWaterMark = opts.highWaterMark;
    this.onGone = opts.onGone;
    port.addEventListener('message', this.onPortMessage);
    port.start();
  }

  /** Aborted when the link closes. */
  get lifeSignal(): AbortSignal {
    return this.life.signal;
  }

  get bufferedAmount(): number {
    return this.inflight;
  }

  get closed(): boolean {
    return this.closeSignal.closed;
  }

  /** Resolves when the other end has taken the link (its hello); rejects if it closes first. */
  opened(signal: AbortSignal): Promise<void> {
    return this.greeted ? Promise.resolve() : this.hello.wait(signal);
  }

  async send(data: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    assertSendable(this, data, opts.signal);
    this.queue(data);
    if (this.inflight < this.highWaterMark) return;
    await this.drained.wait(opts.signal);
  }

  trySend(data: Uint8Array): boolean {
    if (this.closed || data.byteLength > this.maxMessageSize || this.inflight >= this.highWaterMark)
      return false;
    this.queue(data);
    return true;
  }

  onMessage(handler: (data: Uint8Array) => void): Unsubscribe {
    return this.inbox.subscribe(handler);
  }

  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return this.closeSignal.subscribe(handler);
  }

  /** Tells the other end, then closes. What was sent before is delivered first (the port is ordered). */
  close(): void {
    if (this.closed) return;
    this.sendControl({ t: 'close' });
    this.markClosed(undefined);
  }

  /** The other end is gone without a word. */
  cut(reason: Error): void {
    this.markClosed(reason);
  }

  sendControl(msg: LinkControl): void {
    this.port.postMessage(msg);
  }

  /** A copy of its own, transferred: the caller may reuse `data`, and nothing is cloned twice. */
  private queue(data: Uint8Array): void {
    const copy = data.slice();
    this.inflight += copy.byteLength;
    this.port.postMessage(copy.buffer, [copy.buffer]);
  }

  private readonly onPortMessage = (ev: MessageEvent): void => {
    if (this.closed) return;
    const data: unknown = ev.data;
    if (data instanceof ArrayBuffer) {
      this.unacked += data.byteLength;
      if (this.unacked >= ACK_EVERY_BYTES) this.ack();
      else this.ackTimer ??= setTimeout(() => this.ack(), ACK_DELAY_MS);
      this.inbox.push(new Uint8Array(data));
      return;
    }
    if (!isRecord(data)) return;
    if (data.t === 'hello') {
      this.greeted = true;
      this.hello.wake();
    } else if (data.t === 'ack' && typeof data.bytes === 'number') {
      this.inflight = Math.max(0, this.inflight - data.bytes);
      if (this.inflight <= this.highWaterMark / 2) this.drained.wake();
    } else if (data.t === 'close') {
      this.markClosed(undefined);
    }
  };

  private ack(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.unacked === 0 || this.closed) return;
    this.sendControl({ t: 'ack', bytes: this.unacked });
    this.unacked = 0;
  }

  private markClosed(reason: Error | undefined): void {
    if (!this.closeSignal.fire(reason)) return;
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const err = reason ?? new TransportError(`link to ${this.remoteId} closed`);
    this.drained.fail(err);
    this.hello.fail(reason ?? new PeerLostError(this.remoteId, 'its tab closed the link'));
    this.inbox.clear();
    this.port.removeEventListener('message', this.onPortMessage);
    this.port.close();
    this.life.abort(err);
    this.onGone(this);
  }
}
