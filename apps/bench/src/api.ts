import type { TraceSummary } from './trace.ts';
import type { AllReduceStats } from '@peertrain/collective';
import type { RunConfigInput } from '@peertrain/protocol';

// The contract between the benchmark driver (Node, main.ts) and the benchmark page (page.ts): the
// page exposes `window.peertrainBench`, the driver calls it through Playwright's page.evaluate.
// Everything crossing it is plain JSON. Times are "epoch ms" of the page
// (performance.timeOrigin + performance.now()); the driver converts them to its own clock with the
// offset it measured per tab (clockSample).

export interface InitResult {
  userAgent: string;
  hardwareConcurrency: number;
}

/** A PeerJS transport of this tab, addressed by its id in every later call. */
export interface OpenOptions {
  id: string;
  /** 'raw': Connection-level tests (no Mesh on it); 'mesh': a Mesh on top (all-reduce). */
  kind: 'raw' | 'mesh';
  /** Backpressure threshold, bytes (undefined: the adapter's default). */
  highWaterMark?: number;
  /** Mesh frame size (undefined: the Mesh's default). */
  maxFrameBytes?: number;
  timeoutMs: number;
}

export interface ConnectOptions {
  /** This tab's transport (an id given to open). */
  local: string;
  /** Remote transport of the same kind. */
  peerId: string;
  timeoutMs: number;
}

export interface ConnectResult {
  /** The link's maxMessageSize (raw) or 0 (mesh: framing hides it). */
  maxMessageSize: number;
  ms: number;
}

export interface RawArmOptions {
  local: string;
  /** Raw id of the sender whose incoming link is counted. */
  from: string;
  bytes: number;
  timeoutMs: number;
}

export interface RawSendOptions {
  local: string;
  /** Raw id of the receiver (dialled before with connect). */
  to: string;
  bytes: number;
  /** Bytes per Connection.send (the last message may be shorter). */
  msgBytes: number;
  /** Page epoch ms at which to start sending. */
  startAt: number;
  timeoutMs: number;
}

export interface RawSendResult {
  startEpoch: number;
  /** The last send resolved (queued below the high-water mark, not yet delivered). */
  queuedEpoch: number;
  messages: number;
}

export interface RawWaitOptions {
  local: string;
  from: string;
  timeoutMs: number;
}

export interface RawWaitResult {
  /** When the last armed byte arrived. */
  endEpoch: number;
  bytes: number;
  messages: number;
}

export interface MeshSendOptions {
  local: string;
  /** Mesh id of the receiver. */
  to: string;
  bytes: number;
  /** Tensor key tag (the receiver waits for the same one). */
  tag: number;
  startAt: number;
  timeoutMs: number;
}

export interface MeshSendResult {
  startEpoch: number;
  queuedEpoch: number;
  /** Mesh bytes sent to `to` during the send, frame headers included. */
  wireBytes: number;
}

export interface MeshRecvOptions {
  local: string;
  from: string;
  bytes: number;
  tag: number;
  timeoutMs: number;
}

export interface MeshRecvResult {
  endEpoch: number;
  bytes: number;
}

export interface PingOptions {
  local: string;
  /** Mesh id of the tab that runs pong. */
  peer: string;
  count: number;
  /** First tag; message k uses tag + k both ways. */
  tag: number;
  timeoutMs: number;
}

export interface AllReduceOptions {
  /** This tab's mesh transport; it must be in `group`. */
  local: string;
  /** Mesh ids in ring order. */
  group: string[];
  runId: number;
  step: number;
  /** float32 elements all-reduced ([sizeElems]). */
  sizeElems: number;
  bucketElems: number;
  /** Buckets in flight at once (undefined: the collective's default). */
  maxInFlight?: number;
  startAt: number;
  timeoutMs: number;
}

export interface AllReduceResult {
  startEpoch: number;
  endEpoch: number;
  stats: AllReduceStats;
  /** Elements whose sum differs from the expected value (0 when correct). */
  mismatches: number;
  /** When each link was busy or idle during the operation (see trace.ts). */
  trace?: TraceSummary;
}

export interface MemoryAllReduceOptions {
  n: number;
  sizeElems: number;
  bucketElems: number;
  maxInFlight?: number;
  timeoutMs: number;
}

export interface MemoryAllReduceResult {
  /** Wall time until every one of the n in-page ranks finished. */
  ms: number;
  mismatches: number;
}

/** Hosts a coordinator in this tab (part 4): worker tabs of `room` join it. */
export interface CoordinatorOpenOptions {
  room: string;
  timeoutMs: number;
  /** Link to the tabs of this profile through the browser (tab links), as the dashboard does. */
  tabLinks?: boolean;
}

export interface CoordinatorWaitOptions {
  /** Idle workers (joined, device measured) to wait for. */
  workers: number;
  timeoutMs: number;
}

export interface CoordinatorRunOptions {
  config: RunConfigInput;
  /** How long the run may wait for its workers. */
  waitMs: number;
  /** The whole run's limit (cancelled with PhaseTimeoutError after it). */
  timeoutMs: number;
  /** Return the run's Chrome trace (default true; long runs that do not need it skip it). */
  trace?: boolean;
  /**
   * Log PROGRESS_MARKER after every step (default true). Each console line crosses DevTools to the
   * driver, CPU the tabs under test then lack: runs that do not read /proc at step boundaries
   * (scaling) say false.
   */
  progress?: boolean;
}

/**
 * One finished run: the coordinator's RunReport and Chrome trace as plain JSON (the driver
 * validates them). While it runs, the page logs `PROGRESS_MARKER <step>` to the console after
 * every step, so the driver can read /proc at step boundaries.
 */
export interface CoordinatorRunResult {
  report: unknown;
  /** null when the call asked for no trace. */
  trace: unknown;
  /**
   * The run's live view at its end: `{ steps, evals }` (the coordinator's StepPoint[] and
   * EvalPoint[], times in ms since the first step), what the report may not carry.
   */
  timeline: unknown;
}

/** Console line prefix of the page's per-step progress (the driver watches for it). */
export const PROGRESS_MARKER = 'peertrain-bench-progress';

/** What the page exposes on window.peertrainBench. Every call rejects with a named error on failure. */
export interface BenchApi {
  /** Loads /peertrain.json (where the signaling server is). */
  init(opts: { timeoutMs: number }): Promise<InitResult>;
  /** Registers a transport with the signaling server (and builds its Mesh for kind 'mesh'). */
  open(opts: OpenOptions): Promise<void>;
  /** The page's epoch clock, for the driver's offset estimate. */
  clockSample(): number;
  connect(opts: ConnectOptions): Promise<ConnectResult>;
  /**
   * Resets the byte count of the incoming raw link from `from` and expects `bytes`; waits (up to
   * timeoutMs) for that link to be accepted.
   */
  rawArm(opts: RawArmOptions): Promise<void>;
  rawSend(opts: RawSendOptions): Promise<RawSendResult>;
  rawWait(opts: RawWaitOptions): Promise<RawWaitResult>;
  meshSend(opts: MeshSendOptions): Promise<MeshSendResult>;
  meshRecv(opts: MeshRecvOptions): Promise<MeshRecvResult>;
  /** Sends `count` 4-byte tensors one at a time, each after the echo of the previous: round trips in ms. */
  ping(opts: PingOptions): Promise<number[]>;
  /** Echoes `count` tensors from `peer` back to it (the other end of ping). */
  pong(opts: PingOptions): Promise<void>;
  allReduce(opts: AllReduceOptions): Promise<AllReduceResult>;
  /** Ring all-reduce of n ranks inside this page over the memory transport: the CPU cost alone. */
  memoryAllReduce(opts: MemoryAllReduceOptions): Promise<MemoryAllReduceResult>;
  /** Registers the room's coordinator id and starts a coordinator on it. */
  coordinatorOpen(opts: CoordinatorOpenOptions): Promise<{ peerId: string }>;
  /** Resolves once at least `workers` workers are idle in the room. */
  coordinatorWait(opts: CoordinatorWaitOptions): Promise<number>;
  /** Runs one training session on the hosted coordinator. */
  coordinatorRun(opts: CoordinatorRunOptions): Promise<CoordinatorRunResult>;
  /** Closes every transport of the page (and the coordinator). */
  close(): Promise<void>;
}

declare global {
  interface Window {
    peertrainBench?: BenchApi;
  }
}
