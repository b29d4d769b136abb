import { z } from 'zod';
import { BACKENDS, RunConfigSchema } from './config.ts';
import { ProtocolError } from './errors.ts';

// Control messages: one tagged union per direction (coordinator -> worker, worker -> coordinator).
// They travel as JSON inside `control` frames and are validated on arrival.

/**
 * How a link between two peers is carried: a WebRTC data channel, a MessagePort between tabs of one
 * browser profile (transport tab-links.ts), or an in-memory pipe (tests).
 */
export const LINK_KINDS = ['webrtc', 'tab', 'memory'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

/** How many of a worker's links to its peers are of each kind. */
export const LinkCountsSchema = z
  .object({ webrtc: z.number().int().min(0), tab: z.number().int().min(0), memory: z.number().int().min(0) })
  .partial();
export type LinkCounts = z.infer<typeof LinkCountsSchema>;

const LINK_NAMES: Record<LinkKind, string> = { webrtc: 'WebRTC', tab: 'tab', memory: 'in-memory' };

/** "2 tab + 1 WebRTC" ('' when there are none). */
export function linkCountsText(links: LinkCounts | undefined): string {
  return LINK_KINDS.filter((k) => (links?.[k] ?? 0) > 0)
    .map((k) => `${links?.[k]} ${LINK_NAMES[k]}`)
    .join(' + ');
}

const WireErrorSchema = z.object({ name: z.string(), message: z.string(), peerId: z.string().optional() });

export const BackendProbeSchema = z.object({
  backend: z.enum(BACKENDS),
  ok: z.boolean(),
  /** Measured throughput on the probe workload, GFLOP/s; 0 when the backend failed. */
  gflops: z.number().min(0),
  /** Why the backend is unusable (init failure or failed numeric self-check). */
  error: z.string().optional(),
  /**
   * A GPU backend on a software rasterizer (SwiftShader, llvmpipe): the CPU that wasm already uses.
   * 'auto' takes it only when no other backend works.
   */
  emulated: z.boolean().optional(),
  /** What was timed, e.g. "fwd+bwd 784-256-256-10 @64" (absent from older workers). */
  workload: z.string().optional(),
  /** Median time of one pass of the workload after warm-up, ms. */
  stepMs: z.number().min(0).optional(),
  /** The first, untimed pass (kernel compilation, allocation), ms. */
  warmupMs: z.number().min(0).optional(),
  /** Timed passes behind stepMs. */
  samples: z.number().int().min(0).optional(),
});
export type BackendProbe = z.infer<typeof BackendProbeSchema>;

export const DeviceInfoSchema = z.object({
  backend: z.enum(BACKENDS),
  gflops: z.number().min(0),
  probes: z.array(BackendProbeSchema),
  /** WebGPU adapter info (vendor, architecture, description, isFallbackAdapter) when present. */
  adapter: z.record(z.string(), z.union([z.string(), z.boolean(), z.number()])).optional(),
  /** WebGPU adapter limits actually requested for the device. */
  limits: z.record(z.string(), z.number()).optional(),
  userAgent: z.string().optional(),
  hardwareConcurrency: z.number().optional(),
  deviceMemoryGiB: z.number().optional(),
  /** The engine computes in a thread of its own (a dedicated Worker), not on the page's thread. */
  computeThread: z.boolean().optional(),
});
export type DeviceInfo = z.infer<typeof DeviceInfoSchema>;

export const ShardSchema = z.object({
  /** First training-sample index owned by this worker. */
  start: z.number().int().min(0),
  /** Number of training samples owned. */
  count: z.number().int().min(1),
});
export type Shard = z.infer<typeof ShardSchema>;

export const RoleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('worker') }),
  /** Synchronous parameter server colocated with a worker: it also computes its own shard. */
  z.object({ kind: z.literal('worker+server') }),
  /** Pipeline stage `stage` of replica `replica`: layers [first, end) of the model. */
  z.object({
    kind: z.literal('stage'),
    stage: z.number().int().min(0),
    replica: z.number().int().min(0),
  }),
]);
export type Role = z.infer<typeof RoleSchema>;

/** Layers [first, end) of the model, held by one pipeline stage. */
export const StageRangeSchema = z.object({ first: z.number().int().min(0), end: z.number().int().min(1) });
export type StageRange = z.infer<typeof StageRangeSchema>;

/**
 * What a span measured: the one list of span kinds (telemetry records them, the dashboard draws them,
 * the wire carries them). A new kind is added here, then given a lane (telemetry's laneOf) and a
 * colour (the dashboard's SPAN_STYLE); both switch over it exhaustively.
 */
export const SPAN_KINDS = [
  'forward',
  'backward',
  'optimizer',
  'send',
  'recv',
  'wait',
  'allreduce',
  'reduceScatter',
  'allGather',
  'compute',
  'eval',
  /** The coordinator's: an elastic pipeline's stage handed to a spare and every stage rolled back. */
  'recovery',
] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];

/** Timeline row: computation, or communication (which may overlap computation). */
export const LANES = ['compute', 'comm'] as const;
export type Lane = (typeof LANES)[number];

/** One span a worker recorded, on its own clock (the coordinator shifts it onto the common one). */
export const WireSpanSchema = z.object({
  kind: z.enum(SPAN_KINDS),
  startMs: z.number(),
  durMs: z.number().min(0),
  step: z.number().int(),
  microBatch: z.number().int().optional(),
  /** Interleaved pipelines: which of the peer's model chunks the op ran (0 = its first). */
  chunk: z.number().int().min(0).optional(),
  bytes: z.number().min(0).optional(),
  lane: z.enum(LANES),
  /** The peer on the other end of a send / recv. */
  peer: z.string().optional(),
});
export type WireSpan = z.infer<typeof WireSpanSchema>;

/** What a worker measured of one layer (pipeline planning): per micro-batch of the run. */
export const LayerCostSchema = z.object({
  name: z.string(),
  /** Forward + backward of one micro-batch, ms, on this worker. */
  costMs: z.number().min(0),
  paramBytes: z.number().int().min(0),
  /** Bytes one micro-batch keeps alive from forward to backward. */
  activationBytes: z.number().int().min(0),
  /** Bytes of the layer's output for one micro-batch (what a stage boundary after it sends). */
  outputBytes: z.number().int().min(0).optional(),
});
export type LayerCost = z.infer<typeof LayerCostSchema>;

/**
 * What a worker's engine holds (TensorFlow.js `tf.memory()` plus what the runtime knows of it), sent
 * with each pong. Bytes are the engine's own count; `numBytesInGPU` only where the backend has one.
 */
export const MemoryReportSchema = z.object({
  numBytes: z.number().int().min(0),
  numTensors: z.number().int().min(0),
  numBytesInGPU: z.number().int().min(0).optional(),
  /** The engine cannot count exactly (tfjs's `unreliable`, e.g. strings on webgl). */
  unreliable: z.boolean().optional(),
  /** Parameters of the model (or of the stage) this worker holds, float32 bytes. */
  paramBytes: z.number().int().min(0).optional(),
  /** Pipeline: micro-batches whose activations the stage holds for backward now; their bytes at the last step's peak. */
  savedActivations: z.number().int().min(0).optional(),
  peakActivationBytes: z.number().int().min(0).optional(),
});
export type MemoryReport = z.infer<typeof MemoryReportSchema>;

/** Largest bandwidth probe payload a worker accepts (1 MiB; the coordinator sends 256 KiB by default). */
export const MAX_PROBE_BYTES = 1 << 20;

// ---- coordinator -> worker ----
export const ToWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), protocolVersion: z.number().int(), room: z.string() }),
  z.object({ type: z.literal('reject'), reason: z.string() }),
  z.object({
    type: z.literal('assign'),
    runId: z.number().int().min(0),
    rank: z.number().int().min(0),
    /** Peer ids of all workers, index = rank. */
    peers: z.array(z.string()).min(1),
    role: RoleSchema,
    /** Rank of the parameter-server peer when sync = ps. */
    serverRank: z.number().int().min(0).optional(),
    shard: ShardSchema,
    /** Every rank's shard (index = rank): the reference run trains on their union. */
    allShards: z.array(ShardSchema).min(1),
    config: RunConfigSchema,
    /** Pipeline and hybrid: every stage's layers (index = stage); peers[replica * P + stage]. */
    stages: z.array(StageRangeSchema).min(1).optional(),
    /**
     * Elastic runs: this worker joins a run in progress (its rank is past the original ranks, whose
     * count is allShards.length). It opens no links yet: it waits for the epoch that lists it among
     * `joiners` and takes the parameters and optimizer state that epoch's peers[0] streams to it.
     */
    joining: z.boolean().optional(),
    /**
     * Resumed run: its first step is `step`; the state after `step` steps (float32 [P + slots],
     * checkpoint.ts's layout) follows on the mesh under resumeKey(runId).
     */
    resume: z.object({ step: z.number().int().min(1) }).optional(),
  }),
  /** Measure each layer's cost for this config (pipeline planning); answered by profileResult. */
  z.object({ type: z.literal('profile'), runId: z.number().int(), config: RunConfigSchema }),
  /** Step barrier: the worker may run steps up to and including `upTo`. */
  z.object({ type: z.literal('step'), runId: z.number().int(), upTo: z.number().int().min(0) }),
  z.object({ type: z.literal('evaluate'), runId: z.number().int(), step: z.number().int() }),
  /** Train the single-worker reference on the same global batches and compare with the run's params. */
  z.object({ type: z.literal('reference'), runId: z.number().int() }),
  z.object({ type: z.literal('stop'), runId: z.number().int(), reason: z.string() }),
  /**
   * Fault injection ('slow'): from now on the worker stretches each step's computation to `factor`
   * times its measured time (it sleeps the difference), as a slower device would.
   */
  z.object({ type: z.literal('slow'), runId: z.number().int(), factor: z.number().min(1).max(100) }),
  /**
   * Elastic runs: a member was lost, epoch `epoch` begins with `peers` (the survivors, in their
   * original rank order). Abort the step in flight, roll back to the state committed after step
   * fromStep - 1, re-form the ring over `peers` and redo from `fromStep`. Answered by epochAck.
   */
  z.object({
    type: z.literal('epoch'),
    runId: z.number().int(),
    epoch: z.number().int().min(0),
    peers: z.array(z.string()).min(1),
    fromStep: z.number().int().min(0),
    /**
     * Members new in this epoch (admitted at the step boundary fromStep): peers[0] streams each of
     * them the state committed before fromStep (chunked, with a digest) before the ring re-forms.
     */
    joiners: z.array(z.string()).optional(),
  }),
  z.object({ type: z.literal('ping'), id: z.number().int(), t0: z.number() }),
  /**
   * The coordinator dropped this peer (it was silent for the heartbeat timeout, e.g. a frozen tab)
   * and has just heard from it again: it aborts what it had in flight, forgets its run and says
   * hello again (an elastic run in progress readmits it at the next step boundary).
   */
  z.object({ type: z.literal('dropped'), reason: z.string() }),
  /**
   * Bandwidth probe: a uint8 tensor of `bytes` follows on the same link, keyed
   * { runId: 0, step: id, microBatch: null, tag } (runId 0 is never a run's); answered by probeAck
   * once it has all arrived. Sent between runs only.
   */
  z.object({
    type: z.literal('probe'),
    id: z.number().int().min(0),
    bytes: z.number().int().min(1).max(MAX_PROBE_BYTES),
    tag: z.number().int().min(0).max(0xffff_ffff),
  }),
]);
export type ToWorker = z.infer<typeof ToWorkerSchema>;

// ---- worker -> coordinator ----
/** One step's report from a worker. */
const StepDoneSchema = z.object({
  type: z.literal('stepDone'),
  runId: z.number().int(),
  step: z.number().int().min(0),
  /** Training loss of the step; absent on pipeline stages that do not hold the loss. */
  loss: z.number().optional(),
  samples: z.number().int().min(0),
  computeMs: z.number().min(0),
  commMs: z.number().min(0),
  /**
   * Wall time between the end of the worker's previous step and the start of this one (waiting
   * for the coordinator's grant, evaluations, checkpoints, reports): counted in the step's wall
   * time for compute utilization. Absent on a worker's first step.
   */
  idleMs: z.number().min(0).optional(),
  bytesSent: z.number().min(0),
  /** What the worker did during the step, on its own clock. */
  spans: z.array(WireSpanSchema).max(10_000).optional(),
  /** Pipeline: most activation bytes held at once during the step, and what it would be without recomputation. */
  peakActivationBytes: z.number().int().min(0).optional(),
  peakActivationBytesNoRecompute: z.number().int().min(0).optional(),
  /**
   * Asynchronous parameter server: the largest staleness among the pushes acknowledged during
   * this step (server versions applied between the parameters a gradient was computed on and its
   * own application).
   */
  staleness: z.number().int().min(0).optional(),
  /**
   * DiLoCo with fillWaits: samples of the extra inner steps this worker took at the step's round
   * end while the previous exchange was in flight (beyond `samples`, the step's own batch).
   */
  extraSamples: z.number().int().min(0).optional(),
});

/**
 * Most reports one `stepsDone` carries: a round of local steps (DiLoCo's H) or the steps of
 * REPORT_HOLD_MS; a worker with more sends several.
 */
export const MAX_REPORTS_PER_MESSAGE = 256;

export const ToCoordinatorSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    protocolVersion: z.number().int(),
    room: z.string(),
    device: DeviceInfoSchema,
  }),
  /** Data loaded, peer links open, parameters initialised: ready for step 0. */
  z.object({
    type: z.literal('ready'),
    runId: z.number().int(),
    loadMs: z.number().min(0),
    /** Its links to the run's peers by kind (absent from older workers, and with no peers to link to). */
    links: LinkCountsSchema.exactOptional(),
  }),
  /**
   * Its links to the run's peers by kind once an elastic epoch re-formed them: a joiner's first
   * (its `ready` came before it knew its peers), and every member's after a change.
   */
  z.object({ type: z.literal('links'), runId: z.number().int(), links: LinkCountsSchema }),
  StepDoneSchema,
  /**
   * Reports a worker held (a local step's, which nobody waits for) sent as one message, in step
   * order: each message on the coordinator's data channel costs the worker's main thread 0.3-1.5 ms
   * here (the send waits on the network thread), about what a whole step of the MLP computes.
   */
  z.object({
    type: z.literal('stepsDone'),
    reports: z.array(StepDoneSchema).min(1).max(MAX_REPORTS_PER_MESSAGE),
  }),
  z.object({
    type: z.literal('profileResult'),
    runId: z.number().int(),
    layers: z.array(LayerCostSchema).min(1),
  }),
  z.object({
    type: z.literal('evalResult'),
    runId: z.number().int(),
    step: z.number().int(),
    accuracy: z.number().min(0).max(1),
    loss: z.number(),
    count: z.number().int(),
    /**
     * This evaluation reached the run's targetAccuracy: the run ends at `step` (rank 0 runs no
     * further step) and rank 0 sent that step's parameters ahead of it (finalParamsKey(runId, step)).
     */
    final: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('referenceResult'),
    runId: z.number().int(),
    maxAbsDiff: z.number(),
    maxRelDiff: z.number(),
    referenceLoss: z.number(),
  }),
  /** A frame from `from` was refused (malformed); the worker kept going. */
  z.object({ type: z.literal('frameRefused'), from: z.string(), error: WireErrorSchema }),
  z.object({ type: z.literal('error'), runId: z.number().int().optional(), error: WireErrorSchema }),
  z.object({
    type: z.literal('pong'),
    id: z.number().int(),
    t0: z.number(),
    tWorker: z.number(),
    /** The worker's engine memory at the time of the pong (absent before the engine is up). */
    memory: MemoryReportSchema.optional(),
  }),
  /** The probe's payload arrived whole: `bytes` received (or `error` when it did not arrive). */
  z.object({
    type: z.literal('probeAck'),
    id: z.number().int().min(0),
    bytes: z.number().int().min(0),
    error: WireErrorSchema.optional(),
  }),
  z.object({ type: z.literal('leave'), reason: z.string() }),
  /**
   * Sign of life, every HEARTBEAT_EVERY_MS once welcomed (any control message counts as one): a
   * run's member silent for its config.heartbeatTimeoutMs is dropped. `tWorker`: the worker's clock.
   * What the worker saw of its own beats, so a drop can be told apart from a frozen tab: `gapMs`,
   * the time since its previous beat's timer (far over the interval: the tab did not run);
   * `sendWaitMs`, how long its previous beat waited to be handed to the link (still waiting: so far).
   */
  z.object({
    type: z.literal('heartbeat'),
    tWorker: z.number(),
    gapMs: z.number().min(0).optional(),
    sendWaitMs: z.number().min(0).optional(),
  }),
  /** The worker took epoch `epoch`: every stepDone it sends after this one belongs to that epoch. */
  z.object({ type: z.literal('epochAck'), runId: z.number().int(), epoch: z.number().int().min(0) }),
]);
export type ToCoordinator = z.infer<typeof ToCoordinatorSchema>;

/** Any control message, whichever direction. The `type` fields are unique across directions. */
export type ControlMessage = ToWorker | ToCoordinator;

const AnyControlSchema = z.union([ToWorkerSchema, ToCoordinatorSchema]);

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new ProtocolError(
      'bad-message',
      `${what}: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid'}`,
    );
  }
  return r.data;
}

/** unknown in, typed out; throws ProtocolError('bad-message'). */
export const parseToWorker = (v: unknown): ToWorker => parseWith(ToWorkerSchema, v, 'to-worker message');
export const parseToCoordinator = (v: unknown): ToCoordinator =>
  parseWith(ToCoordinatorSchema, v, 'to-coordinator message');
export const parseControl = (v: unknown): ControlMessage =>
  parseWith<ControlMessage>(AnyControlSchema, v, 'control message');
