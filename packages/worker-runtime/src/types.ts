import type { DeviceInfo, LinkCounts, MemoryReport, Role, Shard, WireError } from '@peertrain/protocol';

/** What a worker tab is doing, for its own page. */
export type WorkerPhase =
  'probing' | 'joining' | 'idle' | 'loading' | 'training' | 'reference' | 'done' | 'error' | 'left';

export interface WorkerStatus {
  phase: WorkerPhase;
  peerId: string;
  room: string;
  device: DeviceInfo | null;
  runId: number | null;
  rank: number | null;
  worldSize: number | null;
  role: Role['kind'] | null;
  shard: Shard | null;
  /**
   * Pipeline / hybrid: the stage held (layers [first, end) of `stages`), else null. Interleaved:
   * `chunks` are every range the peer holds, in order (first and end are the first's).
   */
  stage: {
    stage: number;
    replica: number;
    first: number;
    end: number;
    stages: number;
    chunks?: { first: number; end: number }[];
  } | null;
  step: number;
  totalSteps: number;
  loss: number | null;
  bytesSent: number;
  bytesReceived: number;
  framesRefused: number;
  /** The current run's links to its peers by kind (tab links, WebRTC); null before they are open. */
  links: LinkCounts | null;
  lastError: WireError | null;
  /**
   * What the engine holds and the run's parameter bytes (the pong's memory report, refreshed on each
   * coordinator ping); null before the engine is up.
   */
  memory: MemoryReport | null;
}

export interface WorkerRuntime {
  status(): WorkerStatus;
  subscribe(listener: (status: WorkerStatus) => void): () => void;
  /** Leaves the room: tells the coordinator, aborts any step in flight, closes links. */
  leave(reason?: string): Promise<void>;
}
