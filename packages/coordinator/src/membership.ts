import { PROTOCOL_VERSION, PeerLostError, PhaseTimeoutError, isPeerOfRoom } from '@peertrain/protocol';
import type { ToCoordinator } from '@peertrain/protocol';
import { ClockSync } from '@peertrain/telemetry';
import type { Hub } from './hub.ts';
import type { PeerView, RunView } from './types.ts';
import { asError, deadline } from '@peertrain/base';

/** A peer as the coordinator keeps it: its view plus what only the coordinator needs. */
export interface PeerRecord extends PeerView {
  joinedAt: number;
  clock: ClockSync;
  /** When the peer last reported a step (coordinator clock), null outside runs. */
  lastReportAt: number | null;
  /** The bandwidth probe in flight, if any (aborted when a run takes the peer). */
  probe: AbortController | null;
  /** When the peer last sent any control message (coordinator clock): the heartbeat watchdog's input. */
  lastSeenAt: number;
}

/** One member of an epoch: who, at which rank, doing what. */
export interface Member {
  peerId: string;
  rank: number;
  role: PeerView['role'];
}

/**
 * Who trains together. Every change of the members is a new epoch (the number only grows). Today an
 * epoch starts when a run assigns its peers and ends with the run; a peer lost mid-run fails the run.
 * Elastic training (peers leaving and joining mid-run) will start a new epoch instead.
 */
export interface MembershipView {
  epoch: number;
  /** By rank; empty between runs. */
  members: readonly Member[];
}

export type MembershipChange =
  | { type: 'admitted'; peerId: string }
  /** A peer's link closed, it said goodbye or it fell silent ('heartbeat'); `detail` says which. */
  | { type: 'lost'; peerId: string; detail: string }
  | { type: 'epoch'; view: MembershipView };

type Hello = Extract<ToCoordinator, { type: 'hello' }>;

/**
 * Membership and admission: the room's peers (joining until their hello, then admitted if their id,
 * room and protocol version match), their states, stalls, and the epoch view of who trains.
 */
export class Membership {
  readonly peers = new Map<string, PeerRecord>();
  private current: MembershipView = { epoch: 0, members: [] };
  private readonly listeners = new Set<(c: MembershipChange) => void>();

  constructor(
    private readonly room: string,
    private readonly hub: Hub,
    private readonly stallAfterMs: number,
  ) {}

  view(): MembershipView {
    return this.current;
  }

  /** Listens to admissions, losses and epochs; returns the unsubscribe. */
  onChange(listener: (c: MembershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(c: MembershipChange): void {
    for (const l of [...this.listeners]) l(c);
  }

  /** Linked but not introduced yet: 'joining' until its hello (a worker probes its backends first). */
  linkOpened(peerId: string): void {
    if (isPeerOfRoom(peerId, this.room) && this.peers.get(peerId)?.state !== 'idle') {
      this.peers.set(peerId, this.newPeer(peerId, 'joining', null));
      this.hub.changed();
    }
  }

  linkClosed(peerId: string): void {
    const p = this.peers.get(peerId);
    if (!p) return;
    p.probe?.abort(new PeerLostError(peerId));
    this.lose(p, 'left during the run');
  }

  /**
   * The heartbeat watchdog's verdict: the peer sent nothing for `silentMs` (a frozen or hung tab
   * whose link stayed open). Lost with cause 'heartbeat', like a closed link otherwise.
   */
  silent(peerId: string, silentMs: number): void {
    const p = this.peers.get(peerId);
    if (!p || p.state === 'gone') return;
    this.hub.log(`${peerId} sent nothing for ${Math.round(silentMs)} ms: dropped (heartbeat)`);
    p.probe?.abort(new PeerLostError(peerId, 'heartbeat'));
    this.lose(p, 'heartbeat');
  }

  /** A peer's goodbye. */
  left(peerId: string, reason: string): void {
    const p = this.peers.get(peerId);
    if (p) this.lose(p, `left: ${reason}`);
  }

  private lose(p: PeerRecord, detail: string): void {
    p.state = 'gone';
    this.hub.changed();
    this.tell({ type: 'lost', peerId: p.peerId, detail });
  }

  /** Admission: room (peer-id prefix and hello) and protocol version; a refused peer leaves the list. */
  hello(from: string, msg: Hello): void {
    const refuse = (reason: string): void => {
      this.hub.send(from, { type: 'reject', reason });
      if (this.peers.get(from)?.state === 'joining' && this.peers.delete(from)) this.hub.changed();
    };
    if (!isPeerOfRoom(from, this.room) || msg.room !== this.room) {
      refuse(`this coordinator serves room "${this.room}"`);
      return;
    }
    if (msg.protocolVersion !== PROTOCOL_VERSION) {
      refuse(`protocol version mismatch: coordinator ${PROTOCOL_VERSION}, worker ${msg.protocolVersion}`);
      return;
    }
    this.peers.set(from, this.newPeer(from, 'idle', msg.device));
    this.hub.send(from, { type: 'welcome', protocolVersion: PROTOCOL_VERSION, room: this.room });
    this.hub.log(`peer ${from} joined (${msg.device.backend}, ${msg.device.gflops.toFixed(2)} GFLOP/s)`);
    this.hub.changed();
    this.tell({ type: 'admitted', peerId: from });
  }

  /** An admitted peer (not one still joining), or undefined. */
  admitted(peerId: string): PeerRecord | undefined {
    const p = this.peers.get(peerId);
    return p && p.state !== 'joining' ? p : undefined;
  }

  /** Idle peers, oldest first. */
  idle(): PeerRecord[] {
    return [...this.peers.values()].filter((p) => p.state === 'idle').sort((a, b) => a.joinedAt - b.joinedAt);
  }

  /** The oldest `n` idle peers once there are that many; PhaseTimeoutError after `ms`. */
  waitForIdle(n: number, ms: number, signal: AbortSignal): Promise<PeerRecord[]> {
    if (signal.aborted) return Promise.reject(asError(signal.reason));
    return new Promise((resolve, reject) => {
      const s = deadline(signal, ms);
      const check = (): void => {
        const idle = this.idle();
        if (idle.length < n) return;
        cleanup();
        resolve(idle.slice(0, n));
      };
      const off = this.onChange((c) => {
        if (c.type === 'admitted') check();
      });
      const onAbort = (): void => {
        cleanup();
        reject(
          signal.aborted
            ? asError(signal.reason)
            : new PhaseTimeoutError(`waiting for ${n} workers (have ${this.idle().length})`, ms),
        );
      };
      const cleanup = (): void => {
        off();
        s.removeEventListener('abort', onAbort);
      };
      s.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /** A new epoch with these members (by rank). */
  beginEpoch(members: readonly Member[]): MembershipView {
    this.current = { epoch: this.current.epoch + 1, members: [...members] };
    this.tell({ type: 'epoch', view: this.current });
    return this.current;
  }

  /** The run ended: its peers go back to idle (unless gone); a new, empty epoch. */
  endEpoch(ranks: readonly string[]): PeerRecord[] {
    const back = ranks.flatMap((id) => this.peers.get(id) ?? []);
    for (const p of back) {
      p.lastReportAt = null;
      if (p.state !== 'gone') p.state = 'idle';
    }
    if (this.current.members.length > 0) this.beginEpoch([]);
    return back;
  }

  /**
   * Marks the run's peers that went silent 'stalled': no step reported for stallAfterMs while the
   * run is running, and either behind the furthest peer or level with everyone (the whole run is
   * stuck). A peer ahead, waiting at the barrier for one behind, is not stalled. A pause stops
   * the clock. True if any changed. Only peers at work count: a dropped member that said hello
   * again is idle, still under its rank, until the next step boundary readmits it; marked stalled
   * it would never be idle again, so never readmitted (the frozen-tab run lost its peer so).
   */
  checkStalls(t: number, ranks: readonly string[], run: Pick<RunView, 'phase' | 'startedAt'>): boolean {
    if (ranks.length === 0) return false;
    // A spare (an elastic pipeline's peer without a stage) reports no steps until it takes one.
    const members = ranks
      .flatMap((id) => this.peers.get(id) ?? [])
      .filter((p) => !(p.role === 'stage' && p.stage === null));
    if (run.phase === 'paused') {
      for (const p of members) if (p.lastReportAt !== null) p.lastReportAt = t;
      return false;
    }
    if (run.phase !== 'running') return false;
    const since = (p: PeerRecord): number => t - (p.lastReportAt ?? run.startedAt ?? t);
    const lead = Math.max(...members.map((p) => p.lastStep ?? -1));
    const level = members.every((p) => (p.lastStep ?? -1) === lead);
    let any = false;
    for (const p of members) {
      if (p.state === 'gone' || p.state === 'stalled' || p.state === 'idle' || p.state === 'joining')
        continue;
      if (since(p) <= this.stallAfterMs) continue;
      if (!level && (p.lastStep ?? -1) >= lead) continue;
      p.state = 'stalled';
      this.hub.log(`${p.peerId} stalled: no step reported for ${Math.round(since(p))} ms`);
      any = true;
    }
    return any;
  }

  /** The peers as the view shows them (without the coordinator's bookkeeping). */
  peerViews(): PeerView[] {
    return [...this.peers.values()].map(
      ({ joinedAt: _j, clock: _c, lastReportAt: _l, probe: _p, lastSeenAt: _s, ...p }) => ({ ...p }),
    );
  }

  private newPeer(peerId: string, state: 'joining' | 'idle', device: PeerRecord['device']): PeerRecord {
    return {
      peerId,
      state,
      device,
      rank: null,
      role: null,
      shard: null,
      stage: null,
      rttMs: null,
      clockOffsetMs: null,
      lastStep: null,
      lastComputeMs: null,
      lastCommMs: null,
      bytesSent: 0,
      framesRefused: 0,
      memory: null,
      bandwidthBytesPerSec: null,
      joinedAt: this.hub.now(),
      clock: new ClockSync(),
      lastReportAt: null,
      probe: null,
      lastSeenAt: this.hub.now(),
    };
  }
}
