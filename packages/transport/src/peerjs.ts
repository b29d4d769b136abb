import { Peer } from 'peerjs';
import type { DataConnection, PeerError } from 'peerjs';
import { IdTakenError, PeerLostError, PhaseTimeoutError, TransportError } from '@peertrain/protocol';
import { abortReason, throwIfAborted } from '@peertrain/base';
import { runComplianceCases, transportComplianceCases } from './compliance.ts';
import type { ComplianceResult, TransportPair } from './compliance.ts';
import {
  CloseSignal,
  DrainWaiters,
  Inbox,
  anySignal,
  effectiveHighWaterMark,
  emit,
  subscribe,
} from './internal.ts';
import { DEFAULT_ACK_WINDOW, LinkAcks } from './acks.ts';
import type { AbortOptions, Connection, Transport, Unsubscribe } from './types.ts';

/*
 * PeerJS adapter (browsers): the only file that imports `peerjs`, reached through the package
 * subpath `@peertrain/transport/peerjs` so Node code never loads it.
 *
 * - Links are PeerJS DataConnections with serialization 'raw' and reliable: true (ordered). We send on
 *   the underlying RTCDataChannel directly: PeerJS's own send() CLOSES the connection when a message
 *   is too large, and buffers without bound; here an oversize send is refused up front with
 *   TransportError and the link lives on.
 * - maxMessageSize is the RTCPeerConnection's sctp.maxMessageSize (262144 in Chromium; 65536 when
 *   unknown), optionally capped by init.maxMessageSize.
 * - Backpressure: send() resolves at once while the channel's bufferedAmount is below highWaterMark,
 *   else when it drains to half (bufferedAmountLowThreshold = highWaterMark / 2); and while fewer
 *   than ackWindow bytes are out unacknowledged by the other end (acks.ts says why).
 * - PeerJS errors become TransportError (signaling, id taken, WebRTC) or PeerLostError (no such peer).
 */

export interface PeerjsTransportInit {
  /** Our id on the signaling server (alphanumeric, '-' and '_' inside). */
  id: string;
  host: string;
  port: number;
  /** The PeerServer's path, e.g. '/peerjs'. */
  path: string;
  secure?: boolean | undefined;
  /** [] on a LAN or inside a network namespace; STUN/TURN beyond. */
  iceServers?: RTCIceServer[] | undefined;
  /** Backpressure threshold in bytes. Default 1 MiB (see the README for the measurement); capped at
   *  16 MiB - 2 * maxMessageSize per link, since Chromium refuses sends past 16 MiB queued. */
  highWaterMark?: number | undefined;
  /** Caps every link's maxMessageSize below what SCTP allows. */
  maxMessageSize?: number | undefined;
  /** Bytes a link sends ahead of the other end's acknowledgements. Default 256 KiB; 0: off. */
  ackWindow?: number | undefined;
  /**
   * A dial (or an incoming link) that has not opened by then fails with PhaseTimeoutError, naming
   * where its handshake stopped. Default DEFAULT_OPEN_TIMEOUT_MS.
   */
  openTimeoutMs?: number | undefined;
  /** PeerJS log level: 0 none, 1 errors (default), 2 warnings, 3 all. */
  debug?: 0 | 1 | 2 | 3 | undefined;
  /** Aborts registering with the signaling server. */
  signal?: AbortSignal | undefined;
}

// A lower mark does not stop the packet drops of bulk transfers that acks.ts describes (914-1,922
// drops a run at 64 KiB, 1,122-2,165 at 256 KiB, 659-1,500 at 1 MiB, without the window); the
// acknowledged window does.
const DEFAULT_HIGH_WATER_MARK = 2 ** 20;

/**
 * 45 s: under the connect phase's 60 s (PHASE_TIMEOUTS.connect), so a stalled dial still says where
 * it stopped before the phase gives up. The answering tab may be busy when the offer comes: a
 * worker prepares its data and model while it links up (worker-runtime run-loop.ts). With 20 s,
 * 2 of the 21 sessions of one elastic bench at load average 16-25 on 2 cores failed at start with
 * the offer sent and no answer yet, as had two pipeline sessions in full test runs.
 */
export const DEFAULT_OPEN_TIMEOUT_MS = 45_000;
const FALLBACK_MAX_MESSAGE_SIZE = 65_536;
/** How long close() lets queued bytes drain before it closes the channel anyway. */
const CLOSE_DRAIN_MS = 3_000;

/**
 * Registers `init.id` with the signaling server and resolves once it is accepted. Rejects with
 * TransportError (id taken, server unreachable, no WebRTC) or the signal's reason.
 */
export async function peerjsTransport(init: PeerjsTransportInit): Promise<Transport> {
  throwIfAborted(init.signal);
  const peer = new Peer(init.id, {
    host: init.host,
    port: init.port,
    path: init.path,
    secure: init.secure ?? false,
    config: { iceServers: init.iceServers ?? [] },
    debug: init.debug ?? 1,
  });
  const transport = new PeerjsTransport(peer, init);
  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        peer.off('open', onOpen);
        peer.off('error', onError);
        init.signal?.removeEventListener('abort', onAbort);
      };
      const onOpen = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: PeerError<string>): void => {
        cleanup();
        reject(mapPeerError(err, init));
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortReason(init.signal as AbortSignal));
      };
      peer.on('open', onOpen);
      peer.on('error', onError);
      init.signal?.addEventListener('abort', onAbort, { once: true });
    });
  } catch (err) {
    await transport.close();
    throw err;
  }
  return transport;
}

function signalingUrl(init: PeerjsTransportInit): string {
  return `${init.secure ? 'wss' : 'ws'}://${init.host}:${init.port}${init.path}`;
}

/** "Could not connect to peer X" -> X */
function unavailablePeer(message: string): string | null {
  const m = /Could not connect to peer (.+)$/.exec(message);
  return m?.[1] ?? null;
}

function mapPeerError(err: PeerError<string>, init: PeerjsTransportInit): Error {
  switch (err.type) {
    case 'unavailable-id':
      return new IdTakenError(
        init.id,
        `id "${init.id}" is already taken on the signaling server ${signalingUrl(init)}`,
      );
    case 'invalid-id':
      return new TransportError(
        `id "${init.id}" is not a valid PeerJS id (alphanumeric, '-' and '_' inside)`,
      );
    case 'peer-unavailable': {
      const id = unavailablePeer(err.message) ?? '(unknown)';
      return new PeerLostError(id, `no peer with this id on the signaling server ${signalingUrl(init)}`);
    }
    case 'network':
    case 'socket-error':
    case 'socket-closed':
    case 'server-error':
    case 'ssl-unavailable':
      return new TransportError(
        `signaling server ${signalingUrl(init)} unreachable (${err.type}): ${err.message}`,
      );
    case 'disconnected':
      return new TransportError(
        `disconnected from the signaling server ${signalingUrl(init)}: ${err.message}`,
      );
    case 'browser-incompatible':
      return new TransportError('this browser has no WebRTC data channels');
    default:
      return new TransportError(`peerjs ${err.type}: ${err.message}`);
  }
}

/** Raw data as it may arrive (ArrayBuffer, a typed array view, or a string from a misconfigured peer). */
function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return new Uint8Array(0); // refused above (bad-length) like any other malformed frame
}

type DialFailer = (err: Error) => void;

class PeerjsTransport implements Transport {
  readonly localId: string;
  private readonly conns = new Set<PeerjsConnection>();
  private readonly connHandlers = new Set<(conn: Connection) => void>();
  /** Dials in progress, by remote id: how to fail them on a peer-level error. */
  private readonly pending = new Map<string, Set<DialFailer>>();
  private readonly life = new AbortController();
  private readonly highWaterMark: number;
  private readonly ackWindow: number;
  private readonly openTimeoutMs: number;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectDelayMs = 1_000;

  constructor(
    private readonly peer: Peer,
    private readonly init: PeerjsTransportInit,
  ) {
    this.localId = init.id;
    this.highWaterMark = init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.ackWindow = init.ackWindow ?? DEFAULT_ACK_WINDOW;
    this.openTimeoutMs = init.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    peer.on('connection', (dc) => this.accept(dc));
    peer.on('error', (err) => this.onPeerError(err));
    peer.on('open', () => {
      this.reconnectDelayMs = 1_000;
    });
    peer.on('disconnected', () => this.scheduleReconnect());
    // A page that goes away closes its links at once, so its peers see them close now. Left to the
    // page's teardown, a tab closed mid-task sometimes sent nothing, and its peers waited for their
    // heartbeat (10 s) to give up on it (2 of 13 seeded kills of an elastic DiLoCo run).
    globalThis.addEventListener?.('pagehide', this.onPageHide);
  }

  private readonly onPageHide = (): void => {
    if (this.life.signal.aborted) return;
    this.life.abort(new TransportError(`transport ${this.localId} is closed: the page went away`));
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.peer.destroy(); // closes every data channel and peer connection now, synchronously
  };

  async dial(peerId: string, opts: AbortOptions = {}): Promise<Connection> {
    throwIfAborted(opts.signal);
    this.assertOpen();
    if (this.peer.disconnected) {
      throw new TransportError(
        `not connected to the signaling server ${signalingUrl(this.init)}; cannot dial ${peerId}`,
      );
    }
    const dc = this.peer.connect(peerId, { serialization: 'raw', reliable: true }) as
      DataConnection | undefined;
    if (!dc) throw new TransportError(`peerjs refused to dial ${peerId}`);
    try {
      await this.waitOpen(dc, peerId, anySignal(opts.signal, this.life.signal), true);
    } catch (err) {
      dc.close();
      throw err;
    }
    return this.wrap(dc);
  }

  onConnection(handler: (conn: Connection) => void): Unsubscribe {
    return subscribe(this.connHandlers, handler);
  }

  async close(): Promise<void> {
    globalThis.removeEventListener?.('pagehide', this.onPageHide);
    if (this.life.signal.aborted) return;
    this.life.abort(new TransportError(`transport ${this.localId} is closed`));
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    await Promise.all([...this.conns].map((c) => c.closeGracefully()));
    this.peer.destroy();
  }

  private assertOpen(): void {
    if (this.life.signal.aborted || this.peer.destroyed) {
      throw new TransportError(`transport ${this.localId} is closed`);
    }
  }

  private accept(dc: DataConnection): void {
    if (this.life.signal.aborted || dc.serialization !== 'raw' || !dc.reliable) {
      // Only our own kind of link: raw bytes, ordered and reliable.
      dc.close();
      return;
    }
    this.waitOpen(dc, dc.peer, this.life.signal, false).then(
      () => emit(this.connHandlers, this.wrap(dc)),
      () => dc.close(),
    );
  }

  private wrap(dc: DataConnection): PeerjsConnection {
    const c = new PeerjsConnection(dc, this.highWaterMark, this.ackWindow, this.init.maxMessageSize, (gone) =>
      this.conns.delete(gone),
    );
    this.conns.add(c);
    return c;
  }

  /** Resolves when `dc` opens; rejects on its errors, its close, a peer-level error, timeout or abort. */
  private waitOpen(dc: DataConnection, peerId: string, signal: AbortSignal, isDial: boolean): Promise<void> {
    if (dc.open) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const fail: DialFailer = (err) => {
        cleanup();
        reject(err);
      };
      const onOpen = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: PeerError<string>): void =>
        fail(new TransportError(`link to ${peerId} failed (${err.type}): ${err.message}`));
      const onClose = (): void => fail(new PeerLostError(peerId, 'link closed before it opened'));
      const onAbort = (): void => fail(abortReason(signal));
      const timer = setTimeout(() => {
        // Where the handshake stopped (signaling, ICE, DTLS/SCTP) says which side to look at.
        const where = `${isDial ? 'dial' : 'accept'} ${peerId} (${linkState(dc, this.peer)})`;
        fail(new PhaseTimeoutError(where, this.openTimeoutMs));
      }, this.openTimeoutMs);
      let failers = this.pending.get(peerId);
      if (isDial) {
        if (!failers) this.pending.set(peerId, (failers = new Set()));
        failers.add(fail);
      }
      const cleanup = (): void => {
        clearTimeout(timer);
        dc.off('open', onOpen);
        dc.off('error', onError);
        dc.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (failers?.delete(fail) && failers.size === 0) this.pending.delete(peerId);
      };
      dc.on('open', onOpen);
      dc.on('error', onError);
      dc.on('close', onClose);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private onPeerError(err: PeerError<string>): void {
    const mapped = mapPeerError(err, this.init);
    if (err.type === 'peer-unavailable') {
      const id = unavailablePeer(err.message);
      for (const fail of [...(id !== null ? (this.pending.get(id) ?? []) : [])]) fail(mapped);
      return;
    }
    // Signaling or WebRTC trouble: dials in progress cannot complete. Open links are unaffected.
    for (const failers of [...this.pending.values()]) for (const fail of [...failers]) fail(mapped);
  }

  /** Lost the signaling server: open links live on; try to re-register (1 s, 2 s, ... 30 s). */
  private scheduleReconnect(): void {
    if (this.life.signal.aborted || this.peer.destroyed || this.reconnectTimer !== null) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.life.signal.aborted || this.peer.destroyed || !this.peer.disconnected) return;
      this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 30_000);
      this.peer.reconnect();
    }, this.reconnectDelayMs);
  }
}

class PeerjsConnection implements Connection {
  readonly kind = 'webrtc';
  readonly remoteId: string;
  readonly maxMessageSize: number;
  private readonly channel: RTCDataChannel;
  private readonly inbox = new Inbox();
  private readonly closeSignal = new CloseSignal();
  private readonly drained = new DrainWaiters();
  private lastError: Error | undefined;
  private readonly onLow = (): void => this.drained.wake();
  /** The link's acknowledged window (acks.ts). */
  private readonly acks: LinkAcks;

  /** Backpressure threshold of this link: the transport's, capped below Chromium's send queue. */
  private readonly highWaterMark: number;

  constructor(
    private readonly dc: DataConnection,
    highWaterMark: number,
    ackWindow: number,
    cap: number | undefined,
    private readonly onGone: (c: PeerjsConnection) => void,
  ) {
    this.remoteId = dc.peer;
    // PeerJS nulls these on close: keep our own references.
    this.channel = dc.dataChannel;
    const sctpMax = dc.peerConnection.sctp?.maxMessageSize;
    const linkMax =
      sctpMax !== undefined && Number.isFinite(sctpMax) && sctpMax > 0 ? sctpMax : FALLBACK_MAX_MESSAGE_SIZE;
    this.maxMessageSize = Math.min(linkMax, cap ?? Number.POSITIVE_INFINITY);
    this.highWaterMark = effectiveHighWaterMark(highWaterMark, this.maxMessageSize);
    this.channel.bufferedAmountLowThreshold = Math.floor(this.highWaterMark / 2);
    this.channel.addEventListener('bufferedamountlow', this.onLow);
    this.acks = new LinkAcks(dc.peerConnection, ackWindow, (detail) => {
      this.markClosed(new TransportError(`link to ${this.remoteId} failed: ${detail}`));
      this.dc.close();
    });
    dc.on('data', this.onData);
    dc.on('error', this.onError);
    dc.on('close', this.onRemoteClose);
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.channel.bufferedAmount;
  }

  get closed(): boolean {
    return this.closeSignal.closed;
  }

  async send(data: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const refused = this.refusal(data);
    if (refused) throw new TransportError(refused);
    try {
      this.transmit(data);
    } catch (err) {
      throw new TransportError(
        `send to ${this.remoteId} failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
      );
    }
    await this.acks.window.wait(opts.signal);
    if (this.channel.bufferedAmount < this.highWaterMark) return;
    await this.drained.wait(opts.signal);
  }

  trySend(data: Uint8Array): boolean {
    if (this.refusal(data) !== null || this.channel.bufferedAmount >= this.highWaterMark) return false;
    if (this.acks.window.full) return false;
    try {
      this.transmit(data);
      return true;
    } catch {
      return false; // send() meets the same failure and names it
    }
  }

  /** Why `data` cannot go on this link at all, or null. */
  private refusal(data: Uint8Array): string | null {
    if (this.closed || this.channel.readyState !== 'open') return `link to ${this.remoteId} is closed`;
    if (data.byteLength > this.maxMessageSize) {
      return `message of ${data.byteLength} bytes exceeds maxMessageSize ${this.maxMessageSize} on the link to ${this.remoteId}`;
    }
    return null;
  }

  private transmit(data: Uint8Array): void {
    // Only an ArrayBuffer-backed view can be sent; copy anything else (a SharedArrayBuffer view).
    this.channel.send(data.buffer instanceof ArrayBuffer ? (data as Uint8Array<ArrayBuffer>) : data.slice());
    this.acks.window.sent(data.byteLength);
  }

  onMessage(handler: (data: Uint8Array) => void): Unsubscribe {
    return this.inbox.subscribe(handler);
  }

  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return this.closeSignal.subscribe(handler);
  }

  close(): void {
    void this.closeGracefully();
  }

  /** Stops sending now, lets queued bytes drain (up to CLOSE_DRAIN_MS), then closes the channel. */
  async closeGracefully(): Promise<void> {
    if (!this.markClosed(undefined)) return;
    if (this.channel.readyState === 'open' && this.channel.bufferedAmount > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.channel.removeEventListener('bufferedamountlow', done);
          resolve();
        };
        const timer = setTimeout(done, CLOSE_DRAIN_MS);
        this.channel.bufferedAmountLowThreshold = 0;
        this.channel.addEventListener('bufferedamountlow', done);
      });
    }
    this.dc.close();
  }

  private readonly onData = (data: unknown): void => {
    if (this.closed) return;
    const bytes = toBytes(data);
    this.acks.received(bytes.byteLength);
    this.inbox.push(bytes);
  };

  private readonly onError = (err: PeerError<string>): void => {
    this.lastError = new TransportError(`link to ${this.remoteId} failed (${err.type}): ${err.message}`);
  };

  private readonly onRemoteClose = (): void => {
    this.markClosed(this.lastError);
  };

  private markClosed(reason: Error | undefined): boolean {
    if (!this.closeSignal.fire(reason)) return false;
    const err = reason ?? new TransportError(`link to ${this.remoteId} closed`);
    this.drained.fail(err);
    this.acks.close(err);
    this.inbox.clear();
    this.channel.removeEventListener('bufferedamountlow', this.onLow);
    this.dc.off('data', this.onData);
    this.onGone(this);
    return true;
  }
}

/**
 * Browser helper: two PeerJS transports in this page (random ids) run every compliance case.
 * Never throws; each result says ok or the error.
 */
export async function runPeerjsCompliance(opts: {
  host: string;
  port: number;
  path: string;
  iceServers: RTCIceServer[];
  secure?: boolean;
  highWaterMark?: number;
  signal?: AbortSignal;
  caseTimeoutMs?: number;
}): Promise<ComplianceResult[]> {
  const hwm = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  const open = (): Promise<Transport> =>
    peerjsTransport({
      id: `ptc-${Math.random().toString(36).slice(2, 12)}`,
      host: opts.host,
      port: opts.port,
      path: opts.path,
      secure: opts.secure,
      iceServers: opts.iceServers,
      highWaterMark: hwm,
      signal: opts.signal,
    });
  const makePair = async (): Promise<TransportPair> => {
    const a = await open();
    let b: Transport;
    try {
      b = await open();
    } catch (err) {
      await a.close();
      throw err;
    }
    return {
      a,
      b,
      cleanup: async () => {
        await Promise.all([a.close(), b.close()]);
      },
    };
  };
  // An awaited send leaves at most the high-water mark plus one message queued.
  const cases = transportComplianceCases(makePair, {
    maxBufferedAmount: hwm + 262_144,
    eventTimeoutMs: 15_000,
  });
  return runComplianceCases(cases, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    caseTimeoutMs: opts.caseTimeoutMs ?? 120_000,
  });
}

/**
 * A link's handshake state, for a dial that did not open in time: the signaling server connection,
 * then the RTCPeerConnection's signaling, ICE gathering, ICE and connection states, then the data
 * channel's. E.g. "server connected; signaling stable, gathering complete, ice checking, connection
 * connecting, channel connecting" (ICE never found a pair).
 */
export function linkState(
  dc: { peerConnection?: RTCPeerConnection | null; dataChannel?: RTCDataChannel | null },
  peer: { disconnected: boolean; destroyed: boolean },
): string {
  const server = peer.destroyed ? 'destroyed' : peer.disconnected ? 'disconnected' : 'connected';
  const pc = dc.peerConnection;
  const parts = pc
    ? [
        `signaling ${pc.signalingState}`,
        `gathering ${pc.iceGatheringState}`,
        `ice ${pc.iceConnectionState}`,
        `connection ${pc.connectionState}`,
      ]
    : ['no peer connection yet (the offer or answer never arrived)'];
  parts.push(`channel ${dc.dataChannel?.readyState ?? 'none'}`);
  return `server ${server}; ${parts.join(', ')}`;
}
