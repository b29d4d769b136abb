import type { PeerView, StageAssignment } from '@peertrain/coordinator';
import type { RunConfig } from '@peertrain/protocol';

// Short names for peers, their roles and their layers, shared by the table, timeline and topology.

/** Shortens `pt-<room>-w-<nonce>` to `w-<nonce>`; the room is shown once in the header. */
export function shortPeerId(peerId: string, room: string): string {
  const prefix = `pt-${room}-`;
  return peerId.startsWith(prefix) ? peerId.slice(prefix.length) : peerId;
}

/** "stage 1 of replica 0", "spare" (a stage peer without one), "worker + server", "worker", or null when unassigned. */
export function roleText(peer: Pick<PeerView, 'role' | 'stage'>): string | null {
  switch (peer.role) {
    case 'stage':
      return peer.stage ? `stage ${peer.stage.stage} of replica ${peer.stage.replica}` : 'spare';
    case 'worker+server':
      return 'worker + server';
    case 'worker':
      return 'worker';
    case null:
      return null;
    default: {
      const never: never = peer.role;
      return String(never);
    }
  }
}

/** Half-open layer range as the contracts define it: "[3, 6)"; an interleaved peer's chunks: "[0, 1) [5, 6)". */
export function layersText(stage: Pick<StageAssignment, 'first' | 'end' | 'chunks'>): string {
  return (stage.chunks ?? [stage]).map((c) => `[${c.first}, ${c.end})`).join(' ');
}

/** Compact place in the pipeline for small spaces: "S1" with one replica, "S1·R0" with several. */
export function stageBadge(stage: Pick<StageAssignment, 'stage' | 'replica'>, replicas: number): string {
  return replicas > 1 ? `S${stage.stage}·R${stage.replica}` : `S${stage.stage}`;
}

/** Display name of a schedule: "1F1B", "GPipe", "naive". */
const SCHEDULE_NAMES: Readonly<Record<RunConfig['schedule'], string>> = {
  naive: 'naive',
  gpipe: 'GPipe',
  '1f1b': '1F1B',
  interleaved: 'interleaved 1F1B',
  'zb-h1': 'ZB-H1',
};

export function scheduleName(kind: RunConfig['schedule']): string {
  return SCHEDULE_NAMES[kind];
}

/** How a run splits the work, in a few words: "all-reduce", "parameter server", "pipeline 1F1B", "hybrid 2 × GPipe". */
const SYNC_NAMES: Readonly<Record<RunConfig['sync'], string>> = {
  allreduce: 'all-reduce',
  ps: 'parameter server',
  diloco: 'DiLoCo',
  'ps-async': 'async parameter server',
};

export function strategyName(c: Pick<RunConfig, 'strategy' | 'sync' | 'schedule' | 'replicas'>): string {
  const schedule = scheduleName(c.schedule);
  switch (c.strategy) {
    case 'data':
      return SYNC_NAMES[c.sync];
    case 'pipeline':
      return `pipeline ${schedule}`;
    case 'hybrid':
      return `hybrid ${c.replicas} × ${schedule}`;
    default: {
      const never: never = c.strategy;
      return String(never);
    }
  }
}
