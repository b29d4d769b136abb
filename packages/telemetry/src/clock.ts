import { ConfigError } from '@peertrain/protocol';

// Clock offset from ping exchanges, NTP style. The local side (coordinator) stamps t0 when it sends
// a ping and t3 when the pong arrives; the remote side (worker) stamps t1 when the ping arrives and
// t2 when it answers (PeerTrain's pong carries one stamp, tWorker: t1 = t2). Then
//   offset = ((t1 - t0) + (t2 - t3)) / 2     remote clock minus local clock
//   rtt    = (t3 - t0) - (t2 - t1)
// The offset is exact when both directions take equally long; its error is at most rtt / 2, and
// asymmetric queueing shows up as a larger rtt, so the sample with the smallest rtt wins.

export interface PingSample {
  /** Local clock when the ping left. */
  t0: number;
  /** Remote clock when the ping arrived. */
  t1: number;
  /** Remote clock when the pong left (default t1). */
  t2?: number;
  /** Local clock when the pong arrived. */
  t3: number;
}

export interface ClockEstimate {
  /** Remote clock minus local clock, ms: local = remote - offsetMs. */
  offsetMs: number;
  /** Round trip of the sample the estimate comes from, ms. */
  rttMs: number;
  /** Samples in the window. */
  samples: number;
}

export interface ClockSyncOptions {
  /** Most recent samples considered (default 32): older ones leave, so drift is followed. */
  window?: number;
}

interface Measured {
  offsetMs: number;
  rttMs: number;
}

export class ClockSync {
  readonly window: number;
  readonly #samples: Measured[] = [];
  #rejected = 0;

  constructor(opts: ClockSyncOptions = {}) {
    const window = opts.window ?? 32;
    if (!Number.isInteger(window) || window < 1) {
      throw new ConfigError('invalid clock sync', [`window must be a positive integer, got ${window}`]);
    }
    this.window = window;
  }

  /**
   * Adds one exchange. Returns false (and ignores it) when the stamps are not finite or give a
   * negative round trip: such a sample says nothing about the offset.
   */
  add(sample: PingSample): boolean {
    const { t0, t1, t3 } = sample;
    const t2 = sample.t2 ?? t1;
    const rttMs = t3 - t0 - (t2 - t1);
    if (![t0, t1, t2, t3].every(Number.isFinite) || rttMs < 0 || t2 < t1) {
      this.#rejected++;
      return false;
    }
    this.#samples.push({ offsetMs: (t1 - t0 + (t2 - t3)) / 2, rttMs });
    if (this.#samples.length > this.window) this.#samples.shift();
    return true;
  }

  /** The minimum-rtt sample of the window, or null before the first sample. */
  estimate(): ClockEstimate | null {
    let best: Measured | undefined;
    for (const s of this.#samples) if (best === undefined || s.rttMs < best.rttMs) best = s;
    return best === undefined ? null : { ...best, samples: this.#samples.length };
  }

  get offsetMs(): number | null {
    return this.estimate()?.offsetMs ?? null;
  }

  get rttMs(): number | null {
    return this.estimate()?.rttMs ?? null;
  }

  /** Samples refused by add(). */
  get rejected(): number {
    return this.#rejected;
  }

  /** A remote timestamp on the local clock (unchanged before the first sample). */
  toLocal(remoteMs: number): number {
    return remoteMs - (this.offsetMs ?? 0);
  }

  /** A local timestamp on the remote clock. */
  toRemote(localMs: number): number {
    return localMs + (this.offsetMs ?? 0);
  }
}
