// Test double of the Mesh contract (packages/transport/src/types.ts) for the collective's unit
// tests: a hub of per-peer mailboxes. Small on purpose, so that it is obviously correct:
// - sendTensor copies the message and delivers it asynchronously (next microtask, or after the
//   link's delay plus a random jitter); messages with different keys may overtake each other,
//   messages with the same key (same sender) arrive in the order sent, as on one ordered link.
// - links are explicit, as in the real Mesh: connect(peer) opens one link for both ends, and sending
//   to or receiving from a peer without a link rejects with PeerLostError('not connected').
// - recvTensor matches exactly (sender, runId, step, microBatch, tag); early arrivals are buffered.
// - closing (or killing) a peer rejects the receivers waiting on it with PeerLostError and tells the
//   peers linked to it through onPeer('close') and onError.
// The real memory transport is tested against the same algorithms by the lead's integration tests.
import { PeerLostError, ProtocolError, TransportError } from '@peertrain/protocol';
import { abortReason, mulberry32 } from '@peertrain/base';
import type { ControlMessage } from '@peertrain/protocol';
import type {
  AbortOptions,
  LinkStats,
  Mesh,
  TensorKey,
  TensorMessage,
  Unsubscribe,
} from '@peertrain/transport';
import { emptyLinkStats } from '@peertrain/transport';
import { afterEach } from 'vitest';

export interface TestHubOptions {
  /** Fixed delay of every message on the link from -> to, in ms (default 0). */
  delayMs?: (from: string, to: string) => number;
  /** Each message waits an extra random [0, jitterMs) ms, so unrelated messages reorder (default 0). */
  jitterMs?: number;
  /** Random source in [0, 1) for the jitter (default: a seeded PRNG). */
  random?: () => number;
}

const keyString = (from: string, k: TensorKey): string =>
  `${from}|${k.runId}|${k.step}|${k.microBatch ?? '-'}|${k.tag}`;

const linkKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

interface Waiter {
  resolve: (msg: TensorMessage) => void;
  reject: (err: Error) => void;
}

/**
 * Call at the top of a test file: returns a factory of hubs, each disposed (timers cleared, peers
 * closed) after the test that made it.
 */
export function useTestHubs(): (opts?: TestHubOptions) => TestHub {
  const made: TestHub[] = [];
  afterEach(() => {
    for (const hub of made.splice(0)) hub.dispose();
  });
  return (opts = {}) => {
    const hub = new TestHub(opts);
    made.push(hub);
    return hub;
  };
}

export class TestHub {
  readonly #meshes = new Map<string, TestMesh>();
  /** Open links, as "a|b" with a < b. */
  readonly #links = new Set<string>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Messages in flight per (link, key), in send order: each delivery takes the oldest. */
  readonly #inFlight = new Map<string, (() => void)[]>();
  readonly #delay: (from: string, to: string) => number;
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(opts: TestHubOptions = {}) {
    this.#delay = opts.delayMs ?? (() => 0);
    this.#jitter = opts.jitterMs ?? 0;
    this.#random = opts.random ?? mulberry32(1);
  }

  /** The mesh of peer `id` (created on first use, with no links). */
  mesh(id: string): TestMesh {
    let m = this.#meshes.get(id);
    if (m === undefined) {
      m = new TestMesh(id, this);
      this.#meshes.set(id, m);
    }
    return m;
  }

  /** Opens a link between every pair of the given peers at once (as a worker runtime would). */
  linkAll(ids: readonly string[]): void {
    for (const a of ids) for (const b of ids) if (a < b) this.link(a, b);
  }

  /** Opens the link a-b (both live); both ends see onPeer('open'). False when one end is not live. */
  link(a: string, b: string): boolean {
    const ma = this.live(a);
    const mb = this.live(b);
    if (ma === undefined || mb === undefined || a === b) return false;
    const k = linkKey(a, b);
    if (this.#links.has(k)) return true;
    this.#links.add(k);
    ma.notifyPeer(b, 'open');
    mb.notifyPeer(a, 'open');
    return true;
  }

  linked(a: string, b: string): boolean {
    return this.#links.has(linkKey(a, b));
  }

  /** Live peer `id`, or undefined when it never existed or is closed. */
  live(id: string): TestMesh | undefined {
    const m = this.#meshes.get(id);
    return m !== undefined && !m.closed ? m : undefined;
  }

  /** Abruptly closes peer `id`, as if its tab crashed. */
  kill(id: string): void {
    this.#meshes.get(id)?.shutdown();
  }

  /** Delivers `deliver` after the link's delay; same-key messages keep their order. */
  schedule(from: string, to: string, key: string, deliver: () => void): void {
    const linkKey = `${from}>${to}>${key}`;
    const queue = this.#inFlight.get(linkKey) ?? [];
    queue.push(deliver);
    this.#inFlight.set(linkKey, queue);
    const fire = (): void => {
      const q = this.#inFlight.get(linkKey);
      const next = q?.shift();
      if (q !== undefined && q.length === 0) this.#inFlight.delete(linkKey);
      next?.();
    };
    const ms = this.#delay(from, to) + this.#jitter * this.#random();
    if (ms <= 0) {
      queueMicrotask(fire);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fire();
    }, ms);
    this.#timers.add(timer);
  }

  onClosed(id: string): void {
    const lost = new PeerLostError(id);
    for (const m of this.#meshes.values()) {
      const k = linkKey(id, m.localId);
      if (!this.#links.delete(k)) continue;
      if (!m.closed) m.peerLost(id, lost);
    }
  }

  /** Messages scheduled but not yet delivered. */
  get inFlight(): number {
    let n = 0;
    for (const q of this.#inFlight.values()) n += q.length;
    return n;
  }

  /** Closes every peer and clears pending deliveries (call in afterEach). */
  dispose(): void {
    for (const m of this.#meshes.values()) m.shutdown();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#inFlight.clear();
  }
}

export class TestMesh implements Mesh {
  closed = false;
  readonly #buffered = new Map<string, TensorMessage[]>();
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #controlHandlers = new Set<(from: string, msg: ControlMessage) => void>();
  readonly #peerHandlers = new Set<(peerId: string, event: 'open' | 'close') => void>();
  readonly #errorHandlers = new Set<(from: string, err: ProtocolError | PeerLostError) => void>();
  readonly #stats = new Map<string, LinkStats>();

  constructor(
    readonly localId: string,
    private readonly hub: TestHub,
  ) {}

  /** Receivers still waiting (a finished or aborted collective must leave none). */
  pendingReceivers(): number {
    let n = 0;
    for (const w of this.#waiters.values()) n += w.length;
    return n;
  }

  /** Messages that arrived and were never received. */
  bufferedMessages(): number {
    let n = 0;
    for (const b of this.#buffered.values()) n += b.length;
    return n;
  }

  connect(peerId: string, opts: AbortOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError(`mesh ${this.localId} is closed`));
    if (opts.signal?.aborted === true) return Promise.reject(abortReason(opts.signal));
    if (!this.hub.link(this.localId, peerId)) return Promise.reject(new PeerLostError(peerId, 'dial failed'));
    return Promise.resolve();
  }

  isConnected(peerId: string): boolean {
    return !this.closed && this.hub.linked(this.localId, peerId);
  }

  linkKind(peerId: string): 'memory' | null {
    return this.isConnected(peerId) ? 'memory' : null;
  }

  peers(): string[] {
    return [...this.#stats.keys()].filter((p) => this.isConnected(p));
  }

  sendControl(peerId: string, msg: ControlMessage, opts: AbortOptions = {}): Promise<void> {
    return this.#guard(peerId, opts, (target) => {
      const copy = structuredClone(msg);
      this.hub.schedule(this.localId, peerId, 'control', () => target.deliverControl(this.localId, copy));
    });
  }

  sendTensor(peerId: string, msg: TensorMessage, opts: AbortOptions = {}): Promise<void> {
    return this.#guard(peerId, opts, (target) => {
      // The wire copies: later changes to msg.data by the sender must not reach the receiver.
      const copy: TensorMessage = { ...msg, shape: [...msg.shape], data: msg.data.slice() };
      const link = this.#link(peerId);
      link.bytesSent += copy.data.byteLength;
      link.messagesSent++;
      this.hub.schedule(this.localId, peerId, keyString(this.localId, copy), () =>
        target.deliverTensor(this.localId, copy),
      );
    });
  }

  recvTensor(peerId: string, key: TensorKey, opts: AbortOptions = {}): Promise<TensorMessage> {
    if (this.closed) return Promise.reject(new TransportError(`mesh ${this.localId} is closed`));
    if (opts.signal?.aborted === true) return Promise.reject(abortReason(opts.signal));
    const k = keyString(peerId, key);
    const early = this.#buffered.get(k)?.shift();
    if (early !== undefined) {
      if (this.#buffered.get(k)?.length === 0) this.#buffered.delete(k);
      return Promise.resolve(early);
    }
    if (!this.isConnected(peerId)) return Promise.reject(new PeerLostError(peerId, 'not connected'));
    return new Promise<TensorMessage>((resolve, reject) => {
      const signal = opts.signal;
      const remove = (): void => {
        const list = this.#waiters.get(k);
        const i = list?.indexOf(waiter) ?? -1;
        if (list !== undefined && i >= 0) list.splice(i, 1);
        if (list?.length === 0) this.#waiters.delete(k);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        remove();
        if (signal !== undefined) reject(abortReason(signal));
      };
      const waiter: Waiter = {
        resolve: (m) => {
          remove();
          resolve(m);
        },
        reject: (e) => {
          remove();
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = this.#waiters.get(k) ?? [];
      list.push(waiter);
      this.#waiters.set(k, list);
    });
  }

  onControl(handler: (from: string, msg: ControlMessage) => void): Unsubscribe {
    this.#controlHandlers.add(handler);
    return () => this.#controlHandlers.delete(handler);
  }

  onPeer(handler: (peerId: string, event: 'open' | 'close') => void): Unsubscribe {
    this.#peerHandlers.add(handler);
    return () => this.#peerHandlers.delete(handler);
  }

  onError(handler: (from: string, err: ProtocolError | PeerLostError) => void): Unsubscribe {
    this.#errorHandlers.add(handler);
    return () => this.#errorHandlers.delete(handler);
  }

  /** Raw bytes are never a valid frame here: the receiver refuses them (fault injection). */
  sendRaw(peerId: string, bytes: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    return this.#guard(peerId, opts, (target) => {
      this.#link(peerId).bytesSent += bytes.byteLength;
      this.hub.schedule(this.localId, peerId, 'raw', () => target.refuse(this.localId));
    });
  }

  stats(): { total: LinkStats; perPeer: Record<string, LinkStats> } {
    const total = emptyLinkStats();
    const perPeer: Record<string, LinkStats> = {};
    for (const [peer, s] of this.#stats) {
      perPeer[peer] = { ...s };
      total.bytesSent += s.bytesSent;
      total.bytesReceived += s.bytesReceived;
      total.messagesSent += s.messagesSent;
      total.messagesReceived += s.messagesReceived;
      total.framesRefused += s.framesRefused;
    }
    return { total, perPeer };
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  // ---- called by the hub and by other meshes ----

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new TransportError(`mesh ${this.localId} is closed`);
    for (const list of [...this.#waiters.values()]) for (const w of [...list]) w.reject(err);
    this.#buffered.clear();
    this.hub.onClosed(this.localId);
    this.#controlHandlers.clear();
    this.#peerHandlers.clear();
    this.#errorHandlers.clear();
  }

  deliverTensor(from: string, msg: TensorMessage): void {
    if (!this.isConnected(from)) return; // dropped with the link
    const link = this.#link(from);
    link.bytesReceived += msg.data.byteLength;
    link.messagesReceived++;
    const k = keyString(from, msg);
    const waiter = this.#waiters.get(k)?.[0];
    if (waiter !== undefined) {
      waiter.resolve(msg);
      return;
    }
    const list = this.#buffered.get(k) ?? [];
    list.push(msg);
    this.#buffered.set(k, list);
  }

  deliverControl(from: string, msg: ControlMessage): void {
    if (!this.isConnected(from)) return;
    for (const h of [...this.#controlHandlers]) h(from, msg);
  }

  refuse(from: string): void {
    if (this.closed) return;
    this.#link(from).framesRefused++;
    const err = new ProtocolError('bad-magic', `raw bytes from ${from}`);
    for (const h of [...this.#errorHandlers]) h(from, err);
  }

  notifyPeer(peerId: string, event: 'open' | 'close'): void {
    this.#link(peerId);
    for (const h of [...this.#peerHandlers]) h(peerId, event);
  }

  peerLost(peerId: string, err: PeerLostError): void {
    for (const [k, list] of [...this.#waiters]) {
      if (k.startsWith(`${peerId}|`)) for (const w of [...list]) w.reject(err);
    }
    this.notifyPeer(peerId, 'close');
    for (const h of [...this.#errorHandlers]) h(peerId, err);
  }

  #link(peerId: string): LinkStats {
    let s = this.#stats.get(peerId);
    if (s === undefined) {
      s = emptyLinkStats();
      this.#stats.set(peerId, s);
    }
    return s;
  }

  /** Common checks of every send: closed mesh, abort, lost or unknown peer. */
  #guard(peerId: string, opts: AbortOptions, send: (target: TestMesh) => void): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError(`mesh ${this.localId} is closed`));
    if (opts.signal?.aborted === true) return Promise.reject(abortReason(opts.signal));
    const target = this.isConnected(peerId) ? this.hub.live(peerId) : undefined;
    if (target === undefined) return Promise.reject(new PeerLostError(peerId, 'not connected'));
    send(target);
    return Promise.resolve();
  }
}

/** Peer ids p0 .. p(n-1), in rank order. */
export const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `p${i}`);

/** Per-peer input vectors [n][length] in [-1, 1), from `seed`. */
export function inputs(n: number, length: number, seed: number): Float32Array[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => rnd() * 2 - 1));
}

/** Whether every vector holds the first one's bits. */
export function sameBits(data: Float32Array[]): boolean {
  const first = new Uint32Array(data[0]!.buffer);
  return data.every((d) => new Uint32Array(d.buffer).every((v, i) => v === first[i]));
}
