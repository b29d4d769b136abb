import {
  CheckpointError,
  checkResumable,
  checkpointFromBase64,
  checkpointable,
  parseRunConfig,
} from '@peertrain/protocol';
import type { Checkpoint, RunConfig } from '@peertrain/protocol';
import type { Coordinator, RunReport } from '@peertrain/coordinator';
import type { CheckpointStore } from './checkpointStore.ts';
import type { RunController } from './runController.ts';

// Reloading the dashboard mid-run resumes the room. While a run started from the form trains, the
// page keeps a marker in localStorage (survives a reload and a close + reopen in the same browser
// profile): the room, the run's configuration, when it began and its peers by rank. The marker
// goes when the run ends (done, failed or stopped); a page that goes away mid-run leaves it. The
// next page of the room (its URL has the room; a bare URL reopens the marker's room) finds it,
// takes the newest checkpoint of that run from IndexedDB (checkpointStore.ts), waits for the
// workers to say hello again (they wait for the coordinator: worker-runtime coordinator-return.ts)
// and runs the configuration resumed from the checkpoint, the same peers at the same ranks. The
// steps after the checkpoint are done again; a deterministic method ends on the parameters of the
// run never interrupted (as `peertrain train --resume`). No checkpoint yet: the run starts over.

/** The checkpoint period a form run gets when it has none and its method can be checkpointed. */
export const DASHBOARD_CHECKPOINT_EVERY = 10;

const PREFIX = 'peertrain-run:';

/** A run of this page's room in progress (or interrupted: the page went away). */
export interface RunMarker {
  room: string;
  config: RunConfig;
  /** ISO time the run (first) started: checkpoints older than this are of another run. */
  since: string;
  /** Peer ids by rank, once assigned. */
  ranks: string[];
}

/** The part of Storage used (localStorage in the page, a Map in tests). */
export type MarkerStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key' | 'length'>;

export interface RunMarkers {
  load(room: string): RunMarker | null;
  save(marker: RunMarker): void;
  clear(room: string): void;
  /** The room of the newest marker, if any (a bare dashboard URL reopens it). */
  newestRoom(): string | null;
}

/** `unknown` in, RunMarker out; null when it is not one (an old or foreign value). */
function parseMarker(raw: string | null): RunMarker | null {
  if (raw === null) return null;
  try {
    const v = JSON.parse(raw) as Partial<RunMarker>;
    if (typeof v.room !== 'string' || typeof v.since !== 'string' || !Array.isArray(v.ranks)) return null;
    return { room: v.room, since: v.since, ranks: v.ranks.map(String), config: parseRunConfig(v.config) };
  } catch {
    return null;
  }
}

export function runMarkers(storage: MarkerStorage | null): RunMarkers {
  // Storage may be missing or refuse (private mode, quota): the page then just cannot resume.
  const safely = <T>(fn: (s: MarkerStorage) => T, fallback: T): T => {
    try {
      return storage ? fn(storage) : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    load: (room) => safely((s) => parseMarker(s.getItem(PREFIX + room)), null),
    save: (m) => safely((s) => s.setItem(PREFIX + m.room, JSON.stringify(m)), undefined),
    clear: (room) => safely((s) => s.removeItem(PREFIX + room), undefined),
    newestRoom: () =>
      safely((s) => {
        let best: RunMarker | null = null;
        for (let i = 0; i < s.length; i++) {
          const key = s.key(i);
          const m = key?.startsWith(PREFIX) ? parseMarker(s.getItem(key)) : null;
          if (m && (!best || m.since > best.since)) best = m;
        }
        return best?.room ?? null;
      }, null),
  };
}

/** `config` with DASHBOARD_CHECKPOINT_EVERY when it has no period and can be checkpointed. */
export function withCheckpoints(config: RunConfig): RunConfig {
  if (config.checkpointEvery > 0 || !checkpointable(config)) return config;
  return { ...config, checkpointEvery: DASHBOARD_CHECKPOINT_EVERY };
}

/**
 * The checkpoint to resume `marker`'s run from: the room's newest in `store`, if it was taken
 * since the run began and fits its configuration; null when there is none (start over). A stored
 * one that does not decode or fit is skipped too, and `log` says why.
 */
export async function checkpointFor(
  marker: RunMarker,
  store: CheckpointStore,
  log: (message: string) => void,
): Promise<Checkpoint | null> {
  const record = await store.latest(marker.room);
  const createdAt = record?.manifest.createdAt;
  if (!record || createdAt === undefined || createdAt < marker.since) return null;
  try {
    const cp = checkpointFromBase64(record.manifest, record.blobBase64);
    checkResumable(cp, marker.config);
    return cp;
  } catch (err) {
    if (!(err instanceof CheckpointError)) throw err;
    log(`checkpoint after step ${record.step} not used: ${err.message}`);
    return null;
  }
}

/**
 * Runs `config` on `coordinator` under a marker: saved before it starts, its ranks recorded once
 * assigned, cleared when the run settles, kept when `signal` aborts (the page going away).
 * `resume`: the interrupted run's marker and checkpoint (the run goes on from it, same peers).
 */
export async function markedRun(
  coordinator: Pick<Coordinator, 'run' | 'view' | 'subscribe'>,
  config: RunConfig,
  opts: {
    room: string;
    markers: RunMarkers;
    signal: AbortSignal;
    waitMs: number;
    now?: () => Date;
    resume?: { marker: RunMarker; checkpoint: Checkpoint | null };
  },
): Promise<RunReport> {
  const { markers, signal } = opts;
  const marker: RunMarker = opts.resume?.marker ?? {
    room: opts.room,
    config,
    since: (opts.now?.() ?? new Date()).toISOString(),
    ranks: [],
  };
  markers.save(marker);
  // Peer ids by rank, from the view (ranks are set at assignment).
  const off = coordinator.subscribe((view) => {
    const ranked = view.peers.filter((p) => p.rank !== null).sort((a, b) => a.rank! - b.rank!);
    const ranks = ranked.map((p) => p.peerId);
    if (ranks.length === config.workers && ranks.join() !== marker.ranks.join()) {
      marker.ranks = ranks;
      markers.save(marker);
    }
  });
  const checkpoint = opts.resume?.checkpoint;
  try {
    const report = await coordinator.run(config, {
      signal,
      waitMs: opts.waitMs,
      ...(checkpoint ? { resume: checkpoint } : {}),
      ...(opts.resume ? { ranks: opts.resume.marker.ranks } : {}),
    });
    markers.clear(opts.room);
    return report;
  } catch (err) {
    if (!signal.aborted) markers.clear(opts.room);
    throw err;
  } finally {
    off();
  }
}

/** What the page says about the run it resumed; changes once the checkpoint is read. */
export interface Resumed {
  /** The resumed run's configuration (the Run form shows it, not the defaults). */
  config: RunConfig;
  text: () => string;
  subscribe: (listener: () => void) => () => void;
}

/** How long a resumed run waits for its workers to come back (they dial every second). */
export const RESUME_WAIT_MS = 120_000;

/**
 * Starts the run this room's last page left unfinished, if its marker is here: resumed from its
 * newest checkpoint (or from the start without one), with its peers at their ranks. Returns what
 * the page shows about it, or null when there is nothing to resume.
 */
export function resumeInterrupted(deps: {
  coordinator: Pick<Coordinator, 'run' | 'view' | 'subscribe'>;
  runs: RunController;
  markers: RunMarkers;
  checkpoints: CheckpointStore;
  room: string;
  emit: (event: { type: 'log'; message: string }) => void;
}): Resumed | null {
  const { markers, room } = deps;
  const marker = markers.load(room);
  if (!marker) return null;
  let text = `Resuming the run this room's last page left unfinished (${marker.config.workers} workers, ${marker.config.steps} steps)…`;
  const listeners = new Set<() => void>();
  const say = (next: string): void => {
    text = next;
    deps.emit({ type: 'log', message: next });
    for (const l of [...listeners]) l();
  };
  const log = (message: string): void => deps.emit({ type: 'log', message });
  deps.runs.start(async (signal) => {
    const checkpoint = await checkpointFor(marker, deps.checkpoints, log);
    say(
      checkpoint
        ? `Resumed the interrupted run from its checkpoint after step ${checkpoint.step} of ${marker.config.steps}; its workers rejoin as they find this page.`
        : `The interrupted run had no checkpoint yet: it starts over with its workers.`,
    );
    return markedRun(deps.coordinator, marker.config, {
      room,
      markers,
      signal,
      waitMs: RESUME_WAIT_MS,
      resume: { marker, checkpoint },
    });
  });
  return {
    config: marker.config,
    text: () => text,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
