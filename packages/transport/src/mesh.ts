import {
  PeerLostError,
  ProtocolError,
  Reassembler,
  TransportError,
  decodeFrame,
  encodeMessage,
} from '@peertrain/protocol';
import { abortReason, abortable, throwIfAborted } from '@peertrain/base';
import type { ControlMessage, LinkKind, ReassemblerLimits, WireMessage } from '@peertrain/protocol';
import { emit, subscribe } from './internal.ts';
import type {
  AbortOptions,
  Connection,
  LinkStats,
  Mesh,
  TensorKey,
  TensorMessage,
  Transport,
  Unsubscribe,
} from './types.ts';

/*
 * Mesh: peer-addressed messages over a Transport.
 *
 * Sending: each message becomes frames (encodeMessage) no larger than min(maxFrameBytes, the link's
 * maxMessageSize). Each link has one send pump with two queues: control (and raw) messages go
 * before tensor frames, at frame boundaries, so a heartbeat is not stuck behind a 40 MB tensor;
 * within a queue messages go whole, in order. Every frame is awaited (the link's backpressure).
 * A tensor's payload is read before sendTensor returns (encoded now, or copied while a dial is
 * pending), so callers need not copy it first.
 *
 * Receiving: one Reassembler per link; a refused frame is counted, reported through onError, and
 * the link goes on. Tensors go to the receiver waiting for their key (from, runId, step,
 * microBatch, tag), else into a per-peer mailbox (bounded by maxMailboxBytes).
 *
 * Duplicate links: if both sides dial at once, both links stay open (closing one could drop what
 * the other side already queued on it) and both sides send on the same one: the link dialled by
 * the smaller id (newest first among equals). The peer is lost when its last link closes.
 */

export interface MeshOptions {
  /** Largest frame sent, capped by each link's maxMessageSize. Default 65536 (fastest on Chromium). */
  maxFrameBytes?: number;
  /** Limits of each link's Reassembler (hostile peers cannot hold more than this). */
  reassembler?: ReassemblerLimits;
  /** Bytes of tensors held per peer for receivers that have not asked yet. Default 1 GiB. */
  maxMailboxBytes?: number;
}

interface Job {
  frames: Uint8Array[];
  next: number;
  /** Counts as a message in stats (raw sends do not). */
  counted: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Link {
  conn: Connection;
  dialledByLocal: boolean;
  seq: number;
  reassembler: Reassembler;
  nextMsgId: number;
  control: Job[];
  tensor: Job[];
  pumping: boolean;
  unsubs: Unsubscribe[];
}

interface Waiter {
  resolve: (t: TensorMessage) => void;
  reject: (err: Error) => void;
}

interface PeerState {
  id: string;
  links: Link[];
  stats: LinkStats;
  mailbox: Map<string, TensorMessage[]>;
  mailboxBytes: number;
  waiters: Map<string, Waiter[]>;
}

/** All-zero link counters (also the starting point of test meshes that mimic this one). */
export const emptyLinkStats = (): LinkStats => ({
  bytesSent: 0,
  bytesReceived: 0,
  messagesSent: 0,
  messagesReceived: 0,
  framesRefused: 0,
});

function keyOf(k: TensorKey): string {
  return `${k.runId}/${k.step}/${k.microBatch ?? '-'}/${k.tag}`;
}

export function createMesh(transport: Transport, opts: MeshOptions = {}): Mesh {
  return new MeshImpl(transport, opts);
}

class MeshImpl implements Mesh {
  readonly localId: string;
  private readonly peerStates = new Map<string, PeerState>();
  private readonly dials = new Map<string, Promise<void>>();
  /** The signal each dial in `dials` runs under (its first caller's, with the mesh's life). */
  private readonly dialSignals = new Map<string, AbortSignal>();
  private readonly controlHandlers = new Set<(from: string, msg: ControlMessage) => void>();
  private readonly peerHandlers = new Set<(peerId: string, event: 'open' | 'close') => void>();
  private readonly errorHandlers = new Set<(from: string, err: ProtocolError | PeerLostError) => void>();
  private readonly life = new AbortController();
  private readonly unsubTransport: Unsubscribe;
  private readonly maxFrameBytes: number;
  private readonly maxMailboxBytes: number;
  private linkSeq = 0;

  constructor(
    private readonly transport: Transport,
    private readonly opts: MeshOptions,
  ) {
    this.localId = transport.localId;
    this.maxFrameBytes = opts.maxFrameBytes ?? 65_536;
    this.maxMailboxBytes = opts.maxMailboxBytes ?? 2 ** 30;
    this.unsubTransport = transport.onConnection((conn) => this.addLink(conn, false));
  }

  async connect(peerId: string, opts: AbortOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    this.assertOpen();
    if (peerId === this.localId) throw new TransportError(`${peerId} cannot connect to itself`);
    for (;;) {
      if (this.isConnected(peerId)) return;
      const shared = this.dials.get(peerId);
      const owner = shared ? this.dialSignals.get(peerId) : undefined;
      const dial = shared ?? this.startDial(peerId, opts.signal);
      try {
        await abortable(dial, opts.signal);
        return;
      } catch (err) {
        // The first caller's signal owns the dial; a later caller it was given up for (that caller
        // stopped waiting) dials again under its own signal, once the abandoned dial has settled.
        const abandoned = owner?.aborted === true;
        if (!abandoned || opts.signal?.aborted || this.life.signal.aborted) throw err;
        await dial.catch(() => undefined);
      }
    }
  }

  private startDial(peerId: string, owner: AbortSignal | undefined): Promise<void> {
    const signal = owner ? AbortSignal.any([owner, this.life.signal]) : this.life.signal;
    const dial = this.transport.dial(peerId, { signal }).then((conn) => this.addLink(conn, true));
    this.dials.set(peerId, dial);
    this.dialSignals.set(peerId, signal);
    const settled = (): void => {
      if (this.dials.get(peerId) !== dial) return;
      this.dials.delete(peerId);
      this.dialSignals.delete(peerId);
    };
    dial.then(settled, (err: unknown) => {
      settled();
      const p = this.peerStates.get(peerId);
      if (p && p.links.length === 0) {
        const lost =
          err instanceof PeerLostError ? err : new PeerLostError(peerId, `dial failed: ${String(err)}`);
        this.rejectWaiters(p, lost);
      }
    });
    return dial;
  }

  isConnected(peerId: string): boolean {
    return this.peerStates.get(peerId)?.links.some((l) => !l.conn.closed) ?? false;
  }

  linkKind(peerId: string): LinkKind | null {
    return this.preferredLink(peerId)?.conn.kind ?? null;
  }

  peers(): string[] {
    return [...this.peerStates.keys()].filter((id) => this.isConnected(id));
  }

  sendControl(peerId: string, msg: ControlMessage, opts: AbortOptions = {}): Promise<void> {
    return this.sendMessage(peerId, { kind: 'control', control: msg }, opts);
  }

  sendTensor(peerId: string, msg: TensorMessage, opts: AbortOptions = {}): Promise<void> {
    return this.sendMessage(peerId, { kind: 'tensor', tensor: msg }, opts);
  }

  sendRaw(peerId: string, bytes: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    return this.enqueue(peerId, () => ({ frames: [bytes], counted: false, control: true }), opts);
  }

  recvTensor(peerId: string, key: TensorKey, opts: AbortOptions = {}): Promise<TensorMessage> {
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.life.signal.aborted) return Promise.reject(new PeerLostError(peerId, 'local mesh closed'));
    const k = keyOf(key);
    const p = this.peerStates.get(peerId);
    const held = p?.mailbox.get(k);
    const early = held?.shift();
    if (p && held && early) {
      if (held.length === 0) p.mailbox.delete(k);
      p.mailboxBytes -= early.data.byteLength;
      return Promise.resolve(early);
    }
    if (!this.isConnected(peerId) && !this.dials.has(peerId)) {
      return Promise.reject(new PeerLostError(peerId, 'not connected'));
    }
    const peer = p ?? this.peerState(peerId);
    return new Promise<TensorMessage>((resolve, reject) => {
      const remove = (): void => {
        const list = peer.waiters.get(k);
        const i = list?.indexOf(w) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
        if (list?.length === 0) peer.waiters.delete(k);
      };
      const onAbort = (): void => {
        remove();
        reject(abortReason(signal as AbortSignal));
      };
      const w: Waiter = {
        resolve: (t) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(t);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const list = peer.waiters.get(k);
      if (list) list.push(w);
      else peer.waiters.set(k, [w]);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  onControl(handler: (from: string, msg: ControlMessage) => void): Unsubscribe {
    return subscribe(this.controlHandlers, handler);
  }

  onPeer(handler: (peerId: string, event: 'open' | 'close') => void): Unsubscribe {
    return subscribe(this.peerHandlers, handler);
  }

  onError(handler: (from: string, err: ProtocolError | PeerLostError) => void): Unsubscribe {
    return subscribe(this.errorHandlers, handler);
  }

  stats(): { total: LinkStats; perPeer: Record<string, LinkStats> } {
    const total = emptyLinkStats();
    const perPeer: Record<string, LinkStats> = {};
    for (const p of this.peerStates.values()) {
      perPeer[p.id] = { ...p.stats };
      for (const k of Object.keys(total) as (keyof LinkStats)[]) total[k] += p.stats[k];
    }
    return { total, perPeer };
  }

  close(): Promise<void> {
    if (this.life.signal.aborted) return Promise.resolve();
    this.life.abort(new TransportError(`mesh ${this.localId} closed`));
    this.unsubTransport();
    for (const p of this.peerStates.values()) {
      const lost = new PeerLostError(p.id, 'local mesh closed');
      this.rejectWaiters(p, lost);
      for (const link of [...p.links]) this.dropLink(p, link, lost);
      p.mailbox.clear();
      p.mailboxBytes = 0;
    }
    return Promise.resolve();
  }

  // ---- sending ----

  /**
   * The payload is read before this returns: encoded into frames (a copy) when the link is open, or
   * copied now while a dial is still pending, so the caller may reuse its buffer at once.
   */
  private sendMessage(peerId: string, input: WireMessage, opts: AbortOptions): Promise<void> {
    const msg: WireMessage =
      input.kind === 'tensor' && !this.preferredLink(peerId)
        ? { kind: 'tensor', tensor: { ...input.tensor, data: input.tensor.data.slice() } }
        : input;
    return this.enqueue(
      peerId,
      (link) => {
        const frames = encodeMessage(msg, {
          maxFrameBytes: Math.min(this.maxFrameBytes, link.conn.maxMessageSize),
          msgId: link.nextMsgId,
        });
        link.nextMsgId = (link.nextMsgId + 1) >>> 0;
        return { frames, counted: true, control: msg.kind === 'control' };
      },
      opts,
    );
  }

  /**
   * Queues a message on the peer's preferred link. An abort before its first frame left removes it;
   * after that the message still completes on the wire (a half message would pin the receiver's
   * reassembly memory) but the caller is released at once.
   */
  private enqueue(
    peerId: string,
    build: (link: Link) => { frames: Uint8Array[]; counted: boolean; control: boolean },
    opts: AbortOptions,
  ): Promise<void> {
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.life.signal.aborted) return Promise.reject(new PeerLostError(peerId, 'local mesh closed'));
    const link = this.preferredLink(peerId);
    if (!link) {
      // A dial in progress: send once it opens (or fail with its error).
      const dial = this.dials.get(peerId);
      if (!dial) return Promise.reject(new PeerLostError(peerId, 'not connected'));
      return abortable(dial, signal).then(() => this.enqueue(peerId, build, opts));
    }
    let built: ReturnType<typeof build>;
    try {
      built = build(link);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const queue = built.control ? link.control : link.tensor;
    const done = new Promise<void>((resolve, reject) => {
      queue.push({ frames: built.frames, next: 0, counted: built.counted, resolve, reject });
    });
    this.pump(link);
    if (!signal) return done;
    const job = queue[queue.length - 1];
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (job && job.next === 0) {
          const i = queue.indexOf(job);
          if (i >= 0) queue.splice(i, 1);
        }
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      done.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private pump(link: Link): void {
    if (link.pumping) return;
    link.pumping = true;
    void this.drain(link);
  }

  /** Sends queued frames until both queues are empty or the link dies; runs once per link at a time. */
  private async drain(link: Link): Promise<void> {
    const stats = this.peerState(link.conn.remoteId).stats;
    for (;;) {
      const queue = link.control.length > 0 ? link.control : link.tensor;
      const job = queue[0];
      if (!job) {
        // Cleared in the same microtask that found the queues empty, so a message queued right
        // after starts a new pump instead of waiting on one that has stopped.
        link.pumping = false;
        return;
      }
      const frame = job.frames[job.next];
      try {
        if (!frame) throw new TransportError('empty job');
        // Without yielding while the link has room: a caller that computes right after queueing
        // (a pipeline stage) would otherwise hold the rest of this message until its compute ends.
        if (!link.conn.trySend(frame)) await link.conn.send(frame, { signal: this.life.signal });
      } catch (err) {
        if (link.conn.closed || this.life.signal.aborted) {
          this.failJobs(link, new PeerLostError(link.conn.remoteId, errorText(err)));
          link.pumping = false;
          return;
        }
        // The link lives (e.g. an oversized raw send): only this message fails.
        queue.shift();
        job.reject(err instanceof Error ? err : new TransportError(String(err)));
        continue;
      }
      stats.bytesSent += frame.byteLength;
      job.next++;
      if (job.next === job.frames.length) {
        queue.shift();
        if (job.counted) stats.messagesSent++;
        job.resolve();
      }
    }
  }

  private failJobs(link: Link, err: Error): void {
    const jobs = [...link.control, ...link.tensor];
    link.control.length = 0;
    link.tensor.length = 0;
    for (const j of jobs) j.reject(err);
  }

  private preferredLink(peerId: string): Link | undefined {
    const links = this.peerStates.get(peerId)?.links.filter((l) => !l.conn.closed) ?? [];
    const smaller = this.localId < peerId ? this.localId : peerId;
    const rank = (l: Link): number => ((l.dialledByLocal ? this.localId : peerId) === smaller ? 1 : 0);
    let best: Link | undefined;
    for (const l of links) {
      if (!best || rank(l) > rank(best) || (rank(l) === rank(best) && l.seq > best.seq)) best = l;
    }
    return best;
  }

  // ---- receiving ----

  private addLink(conn: Connection, dialledByLocal: boolean): void {
    if (this.life.signal.aborted || conn.remoteId === this.localId) {
      conn.close();
      return;
    }
    const peer = this.peerState(conn.remoteId);
    const link: Link = {
      conn,
      dialledByLocal,
      seq: this.linkSeq++,
      reassembler: new Reassembler(this.opts.reassembler),
      nextMsgId: 0,
      control: [],
      tensor: [],
      pumping: false,
      unsubs: [],
    };
    link.unsubs.push(
      conn.onMessage((bytes) => this.onFrame(peer, link, bytes)),
      conn.onClose((reason) => this.onLinkClosed(peer, link, reason)),
    );
    peer.links.push(link);
    if (peer.links.length === 1) emit(this.peerHandlers, peer.id, 'open');
  }

  private onFrame(peer: PeerState, link: Link, bytes: Uint8Array): void {
    peer.stats.bytesReceived += bytes.byteLength;
    let msg: WireMessage | null;
    try {
      msg = link.reassembler.push(decodeFrame(bytes));
    } catch (err) {
      this.refuse(
        peer,
        err instanceof ProtocolError ? err : new ProtocolError('bad-message', errorText(err)),
      );
      return;
    }
    if (!msg) return;
    peer.stats.messagesReceived++;
    if (msg.kind === 'control') {
      emit(this.controlHandlers, peer.id, msg.control);
      return;
    }
    const t = msg.tensor;
    const k = keyOf(t);
    const waiters = peer.waiters.get(k);
    const w = waiters?.shift();
    if (waiters?.length === 0) peer.waiters.delete(k);
    if (w) {
      w.resolve(t);
      return;
    }
    if (peer.mailboxBytes + t.data.byteLength > this.maxMailboxBytes) {
      this.refuse(
        peer,
        new ProtocolError(
          'bad-length',
          `tensor ${k} dropped: more than ${this.maxMailboxBytes} bytes unclaimed`,
        ),
      );
      return;
    }
    const held = peer.mailbox.get(k);
    if (held) held.push(t);
    else peer.mailbox.set(k, [t]);
    peer.mailboxBytes += t.data.byteLength;
  }

  private refuse(peer: PeerState, err: ProtocolError): void {
    peer.stats.framesRefused++;
    emit(this.errorHandlers, peer.id, err);
  }

  private onLinkClosed(peer: PeerState, link: Link, reason: Error | undefined): void {
    if (this.life.signal.aborted || !peer.links.includes(link)) return;
    const lost =
      reason instanceof PeerLostError
        ? reason
        : new PeerLostError(peer.id, reason?.message ?? 'connection closed');
    this.dropLink(peer, link, lost);
    if (peer.links.length > 0) return;
    this.rejectWaiters(peer, lost);
    emit(this.peerHandlers, peer.id, 'close');
    emit(this.errorHandlers, peer.id, lost);
  }

  private dropLink(peer: PeerState, link: Link, err: Error): void {
    const i = peer.links.indexOf(link);
    if (i >= 0) peer.links.splice(i, 1);
    for (const u of link.unsubs) u();
    this.failJobs(link, err);
    link.reassembler.clear();
    link.conn.close();
  }

  private rejectWaiters(peer: PeerState, err: Error): void {
    const all = [...peer.waiters.values()].flat();
    peer.waiters.clear();
    for (const w of all) w.reject(err);
  }

  private peerState(id: string): PeerState {
    let p = this.peerStates.get(id);
    if (!p) {
      p = { id, links: [], stats: emptyLinkStats(), mailbox: new Map(), mailboxBytes: 0, waiters: new Map() };
      this.peerStates.set(id, p);
    }
    return p;
  }

  private assertOpen(): void {
    if (this.life.signal.aborted) throw new TransportError(`mesh ${this.localId} closed`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
