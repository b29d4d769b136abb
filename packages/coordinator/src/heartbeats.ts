import type { ToCoordinator } from '@peertrain/protocol';
import type { Hub } from './hub.ts';
import type { Membership } from './membership.ts';
import type { RunView } from './types.ts';
import type { Timers } from './coordinator.ts';

/*
 * Heartbeats and the watchdog. A welcomed worker sends `heartbeat` every HEARTBEAT_EVERY_MS, and
 * answers the coordinator's pings; any control message from a peer counts as a sign of life
 * (lastSeenAt). While a run is running (or paused), a member silent for the run's
 * config.heartbeatTimeoutMs is lost with cause 'heartbeat' (Membership.silent): the same path as a
 * closed link, so an elastic run ends the epoch and redoes the step without it, any other run fails
 * with PeerLostError. A frozen tab's link stays open, so without this the run would only stall.
 *
 * Silence is counted while the coordinator listens. Its own tab can stall too (a long task, a
 * starved machine): the peers' messages then wait in its queue, unread, and a watchdog tick that
 * runs first would drop members that spoke all along. A tick that comes `awayAfterMs` after the
 * last one or later marks the coordinator as having been away, and silence counts from that tick.
 *
 * A dropped peer that speaks again (its tab thawed) is told so, once (`dropped`): it aborts what it
 * had in flight, forgets its run and says hello again, and everything it sent until then is void.
 * Its new hello admits it as an idle peer; an elastic run in progress takes it back at the next
 * step boundary (the driver's admitJoiners), any other run has no more use for it.
 */

/** What the watchdog needs of the run driver. */
export interface WatchedRun {
  /** Peer ids of the run in progress, by rank (empty when none). */
  ranks(): readonly string[];
  readonly runView: Pick<RunView, 'phase' | 'config'>;
}

/**
 * The gap between two watchdog ticks that means the coordinator itself stalled: 3 intervals, or a
 * third of the heartbeat timeout if that is more. A hidden dashboard tab's timers, which Chromium
 * aligns to whole seconds (ticks 1-2 s apart), do not count as a stall.
 */
export function awayAfterMs(everyMs: number, heartbeatTimeoutMs: number): number {
  return Math.max(3 * everyMs, heartbeatTimeoutMs / 3);
}

export class Heartbeats {
  /** Dropped peers already told so (until their next hello). */
  private readonly told = new Set<string>();
  /** Dropped peers whose own account of the silence (their first beat since) is logged. */
  private readonly explained = new Set<string>();
  /** When the coordinator last came back from a stall of its own: no silence counts before it. */
  private listeningSince = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly hub: Hub,
    private readonly membership: Membership,
    private readonly run: WatchedRun,
  ) {}

  /** Checks every `everyMs` on the injected timers; returns the stop. */
  start(timers: Timers, everyMs: number): () => void {
    let last = this.hub.now();
    const handle = timers.setInterval(() => {
      const t = this.hub.now();
      const timeout = this.run.runView.config?.heartbeatTimeoutMs ?? 0;
      if (t - last >= awayAfterMs(everyMs, timeout)) this.resumed(t, t - last);
      last = t;
      this.check(t);
    }, everyMs);
    return () => timers.clearInterval(handle);
  }

  /** The coordinator did not run for `awayMs` until `t`: what the peers sent meanwhile is unread yet. */
  resumed(t: number, awayMs: number): void {
    this.listeningSince = t;
    if (this.run.ranks().length > 0)
      this.hub.log(`the coordinator did not run for ${Math.round(awayMs)} ms: silence counts from now`);
  }

  /**
   * A control message of `type` arrived from `from`: a sign of life. False when the peer was
   * dropped and has not said hello since: the message is void (the peer is told, once).
   */
  heard(from: string, msg: ToCoordinator): boolean {
    const p = this.membership.peers.get(from);
    if (!p) return true; // not admitted: route() answers only its hello
    if (msg.type === 'hello') {
      this.told.delete(from);
      this.explained.delete(from);
      return true;
    }
    if (p.state !== 'gone') {
      p.lastSeenAt = this.hub.now();
      return true;
    }
    if (!this.told.has(from)) {
      this.told.add(from);
      this.hub.log(`${from} speaks again after it was dropped: told to rejoin`);
      this.hub.send(from, { type: 'dropped', reason: 'no heartbeat within the timeout' });
    }
    if (msg.type === 'heartbeat' && msg.gapMs !== undefined && !this.explained.has(from)) {
      // Its first beat since the drop says what held it: its tab (the timer ran late), its send
      // queue (the beat before waited to reach the link), or neither (the link or this tab).
      this.explained.add(from);
      const sendWait = Math.round(msg.sendWaitMs ?? 0);
      this.hub.log(
        `${from}'s own view of the silence: its heartbeat timer ran ${Math.round(msg.gapMs)} ms after the last, ` +
          `whose beat waited ${sendWait} ms to reach its link`,
      );
    }
    return false;
  }

  /**
   * Whom the coordinator still hears, said as members fall silent: when nobody has been heard for
   * about as long, its own receiving (or the browser's network) stalled rather than each tab.
   */
  private lastWord(t: number, silentCount: number): string {
    let latest = Number.NEGATIVE_INFINITY;
    let from = '';
    for (const id of this.run.ranks()) {
      const p = this.membership.peers.get(id);
      if (p && p.state !== 'gone' && p.lastSeenAt > latest) [latest, from] = [p.lastSeenAt, id];
    }
    const members = this.run.ranks().length;
    return `${silentCount} of ${members} members silent past the heartbeat timeout; the last word from any member came ${Math.round(t - latest)} ms ago (${from})`;
  }

  /** Drops the run's members silent for longer than its heartbeat timeout; returns who. */
  check(t: number): string[] {
    const { phase, config } = this.run.runView;
    if (!config || !(phase === 'running' || phase === 'paused')) return [];
    const silent: { peerId: string; ms: number }[] = [];
    for (const id of this.run.ranks()) {
      const p = this.membership.peers.get(id);
      if (!p || p.state === 'gone') continue;
      const ms = t - Math.max(p.lastSeenAt, this.listeningSince);
      if (ms > config.heartbeatTimeoutMs) silent.push({ peerId: id, ms });
    }
    if (silent.length > 0) this.hub.log(this.lastWord(t, silent.length));
    // Each loss may end an epoch (or the run): one at a time, each against the state the last left.
    for (const s of silent) this.membership.silent(s.peerId, s.ms);
    return silent.map((s) => s.peerId);
  }
}
