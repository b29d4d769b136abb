import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { readPartition } from './partition.ts';
import { PHASE_TIMEOUTS } from './timeouts.ts';
import { MODEL_PRESETS, modelPreset } from './presets.ts';

export const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Sizes of the built-in datasets; coordinator and engine agree on them through this table. */
export const DATASETS = {
  /** 10,000 real MNIST digits from the `mnist` package, fixed split (public/data/mnist.bin). */
  mnist: { train: 8000, test: 2000, inputSize: 784, classes: 10 },
  /** Seeded, learnable Gaussian blobs in the MNIST shape: fast tests without the data file. */
  synthetic: { train: 4096, test: 1024, inputSize: 784, classes: 10 },
} as const;
export type DatasetName = keyof typeof DATASETS;

export const OptimizerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sgd'), momentum: z.number().min(0).max(1).default(0) }),
  z.object({
    kind: z.literal('adam'),
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.999),
    epsilon: z.number().positive().default(1e-8),
  }),
]);
export type OptimizerConfig = z.infer<typeof OptimizerSchema>;

export const STRATEGIES = ['data', 'pipeline', 'hybrid'] as const;
export type Strategy = (typeof STRATEGIES)[number];
/**
 * Pipeline schedules (packages/schedules builds their op lists): interleaved is Megatron-LM's
 * interleaved 1F1B (virtualStages chunks per peer), zb-h1 the zero-bubble schedule with the backward
 * split into input and weight parts (Qi et al. 2023).
 */
export const SCHEDULES = ['naive', 'gpipe', '1f1b', 'interleaved', 'zb-h1'] as const;
/**
 * How data-parallel workers agree: allreduce (synchronous ring all-reduce of gradients every step),
 * ps (synchronous parameter server), diloco (H local steps, then an outer optimizer step on the
 * all-reduced pseudo-gradient), ps-async (parameter server with bounded staleness).
 */
export const SYNC_METHODS = ['allreduce', 'ps', 'diloco', 'ps-async'] as const;

export type SyncMethod = (typeof SYNC_METHODS)[number];

/** config.allReduce: how a fp32 all-reduce sums (collective's allReduceAlgorithm chooses on 'auto'). */
export const ALL_REDUCE_ALGORITHMS = ['auto', 'ring', 'pairwise', 'direct'] as const;

/** Elastic runs: keep the global batch (fixed-global, the reference's) or each worker's batch (scaled-lr). */
export const ELASTIC_POLICIES = ['fixed-global', 'scaled-lr'] as const;
export type ElasticPolicy = (typeof ELASTIC_POLICIES)[number];

/**
 * What every exchanged tensor is compressed with: none, fp16, int8 (a scale per bucket, stochastic
 * rounding), topk:FRACTION (error feedback) or powersgd:RANK (low rank, error feedback).
 */
export const COMPRESSION_PATTERN = /^(none|fp16|int8|topk:\d*\.?\d+|powersgd:[1-9]\d*)$/;

/** Problems with a compression spec (none when valid). */
export function compressionIssues(spec: string): string[] {
  if (!COMPRESSION_PATTERN.test(spec))
    return [`expected none, fp16, int8, topk:FRACTION or powersgd:RANK, got ${JSON.stringify(spec)}`];
  const [kind, arg] = spec.split(':');
  if (kind === 'topk' && !(Number(arg) > 0 && Number(arg) <= 1))
    return [`topk fraction ${arg} is not in (0, 1]`];
  if (kind === 'powersgd' && Number(arg) > 256) return [`powersgd rank ${arg} is over 256`];
  return [];
}
export type ScheduleKind = (typeof SCHEDULES)[number];

/** Default batch per data-parallel worker, and per pipeline replica (the whole pipeline's batch). */
export const DEFAULT_BATCH = { data: 32, pipeline: 128, hybrid: 128 } as const;
/** Default micro-batches per step for gpipe and 1f1b (naive always runs 1). */
export const DEFAULT_MICRO_BATCHES = 8;

const RunConfigObject = z.object({
  /**
   * data: every worker holds the whole model (sync = allreduce | ps). pipeline: the model is cut into
   * `workers` stages. hybrid: `replicas` pipelines of workers / replicas stages, each stage's
   * gradients all-reduced across the replicas.
   */
  strategy: z.enum(STRATEGIES).default('data'),
  sync: z.enum(SYNC_METHODS).default('allreduce'),
  // ---- diloco (local steps with an outer optimizer) ----
  /** Inner steps per round (H): each worker trains alone for H steps, then the workers average. */
  innerSteps: z.number().int().min(1).max(100_000).default(20),
  /** Outer optimizer: SGD on the averaged pseudo-gradient (global - local); DiLoCo's defaults. */
  outerLr: z.number().positive().max(10).default(0.7),
  outerMomentum: z.number().min(0).max(0.999).default(0.9),
  outerNesterov: z.boolean().default(true),
  /** Run round k's outer exchange while round k+1's inner steps compute; applied one round late. */
  overlapOuter: z.boolean().default(false),
  /**
   * With overlapOuter: a worker whose round ends before the previous round's exchange is done
   * (the others are slower) takes extra inner steps on further batches of its shard while it
   * waits, at most innerSteps of them, instead of idling. Faster workers then contribute more
   * steps to the round (hivemind's collaborative batches work the same way); the runs' losses no
   * longer repeat from one run to the next, as timing decides how many steps fill a wait.
   */
  fillWaits: z.boolean().default(false),
  /**
   * With fillWaits: at most this many extra inner steps per wait (default innerSteps). Over a weak
   * link an exchange outlasts H steps many times over (3 MLP tabs over 20 Mbit/s, 2% loss, 40 ms:
   * about 1.4 s against 50 ms of steps), and the worker idles the rest unless it may fill more.
   */
  fillMax: z.number().int().min(1).max(100_000).optional(),
  // ---- parameter server, asynchronous ----
  /** ps-async: a worker may compute on parameters at most this many versions old. */
  staleness: z.number().int().min(0).max(1000).default(2),
  /** Server peers, each owning a key range of the parameters (ps, ps-async). */
  psShards: z.number().int().min(1).max(64).default(1),
  /** Compression of every exchanged tensor (see COMPRESSION_PATTERN). */
  compress: z.string().default('none'),
  /** Stop the run once a test evaluation reaches this accuracy (checked every evalEvery steps). */
  targetAccuracy: z.number().gt(0).max(1).optional(),
  model: z.enum(MODEL_PRESETS).default('mlp'),
  dataset: z.enum(['mnist', 'synthetic']).default('mnist'),
  workers: z.number().int().min(1).max(64).default(3),
  steps: z.number().int().min(1).default(300),
  /**
   * data: per-worker batch (global batch = workers * batch). pipeline / hybrid: per-replica batch,
   * split into micro-batches (global batch = replicas * batch). Default: DEFAULT_BATCH[strategy].
   */
  batch: z.number().int().min(1).max(4096).optional(),
  // 0.1: MNIST MLP reaches 0.94+ in 300 steps at global batch 96 on every seed tried (engine README).
  lr: z.number().positive().default(0.1),
  optimizer: OptimizerSchema.default({ kind: 'sgd', momentum: 0.9 }),
  seed: z.number().int().min(0).max(0xffffffff).default(42),
  backend: z.enum(['auto', ...BACKENDS]).default('auto'),
  /** All-reduce bucket size in float32 elements (bandwidth/latency trade-off). */
  bucketElems: z.number().int().min(1).default(65536),
  /**
   * How a fp32 all-reduce sums: 'auto' (default) takes the direct exchange for a small tensor, the
   * pairwise one (2 hops) up to 16 workers and the ring (2(N-1) hops) past them; the others force
   * one (collective's allReduceAlgorithm). Compressed exchanges keep their own.
   */
  allReduce: z.enum(ALL_REDUCE_ALGORITHMS).default('auto'),
  /**
   * allreduce: start each gradient bucket's all-reduce as soon as the backward pass has computed it
   * (last layers first), while the first layers' gradients are still being computed (PyTorch DDP).
   */
  overlap: z.boolean().default(false),
  /** Evaluate test accuracy every this many steps (0: only at the end). */
  evalEvery: z.number().int().min(0).default(50),
  /** Also train the single-worker reference (batch workers*batch) and report the parameter difference. */
  reference: z.boolean().default(false),
  // ---- pipeline and hybrid ----
  schedule: z.enum(SCHEDULES).default('1f1b'),
  /** Micro-batches per step. Default: 1 for naive, DEFAULT_MICRO_BATCHES otherwise. */
  microBatches: z.number().int().min(1).max(1024).optional(),
  /**
   * Interleaved: model chunks per peer (V). The planner cuts P * V chunks and chunk c goes to the
   * peer of stage c mod P. 1 for every other schedule.
   */
  virtualStages: z.number().int().min(1).max(16).default(1),
  /** Keep only each stage's input per micro-batch; run the forward again inside backward. */
  recompute: z.boolean().default(false),
  /** Codec of the tensors that cross stages (activations forward, their gradients backward). */
  activationCompress: z.enum(['none', 'fp16', 'int8']).default('none'),
  /**
   * Zero skipping between stages (lossless): a tensor that is mostly zeros (a ReLU's output) crosses
   * as a mask and its non-zero values, and the gradient sent back for a ReLU's output is zeroed
   * where the output was (the sender drops those elements anyway) and crosses the same way. Not
   * with activationCompress int8.
   */
  activationSkipZeros: z.boolean().default(true),
  /** 'auto' (the planner, from per-layer costs measured on each worker) or ranges "0-2,3-5,6-7". */
  partition: z.string().min(1).default('auto'),
  /** Pipeline replicas (hybrid); workers = replicas * stages. */
  replicas: z.number().int().min(1).max(64).default(1),
  /**
   * Relative data-shard sizes, one per data-parallel rank (data: per worker; pipeline / hybrid: per
   * replica), each > 0: rank r gets floor(train * w_r / sum(w)) samples. Absent: equal shards. Only
   * which samples a rank draws changes; its per-step batch does not, so the single-worker
   * reference (the union of every rank's batch) still matches.
   */
  shards: z.array(z.number()).min(1).max(64).optional(),
  /**
   * Data parallel over the ring (sync allreduce): a lost worker ends the epoch instead of the run;
   * the survivors redo the step in flight over the re-formed ring, the global batch unchanged.
   */
  elastic: z.boolean().default(false),
  /**
   * Elastic pipelines: idle peers kept beside the stages, one taking a lost stage's layers. Of the
   * `workers` peers the first workers - spares are stages (stages = (workers - spares) / replicas).
   */
  spares: z.number().int().min(0).max(63).default(0),
  /**
   * Elastic pipelines: every stage sends its parameters and optimizer state to the coordinator every
   * this many steps; a lost stage rolls every stage back to the newest complete set (10: at most 10
   * steps redone, one stage's state per 10 steps on the coordinator's link).
   */
  stageCheckpointEvery: z.number().int().min(1).max(100_000).default(10),
  /**
   * Checkpoint the parameters and optimizer state every this many steps (0: never); the holder
   * (rank 0, or the parameter server) sends them to the coordinator (checkpoint.ts).
   */
  checkpointEvery: z.number().int().min(0).default(0),
  /**
   * What an elastic run keeps when members leave. fixed-global: the global batch (the N0 original
   * ranks' batches, re-split over the members): equals the undisturbed run and the reference.
   * scaled-lr: each member's own batch; the global batch shrinks to members/N0 of it and the
   * learning rate is scaled by members/N0 with it (the linear scaling rule): lost ranks' samples
   * are skipped, so the run departs from the reference from the first loss on.
   */
  elasticPolicy: z.enum(ELASTIC_POLICIES).default('fixed-global'),
  /**
   * A member of a running run that sends nothing (heartbeats are sent every second) for this long
   * is lost with cause 'heartbeat' (a frozen or crashed tab whose link stays open): an elastic run
   * goes on without it (and readmits it when it speaks again), any other run fails. 10 s: a wasm
   * step can hold a busy tab's main thread for about a second, an evaluation a few.
   */
  heartbeatTimeoutMs: z.number().int().min(500).max(600_000).default(PHASE_TIMEOUTS.heartbeat.ms),
});

/**
 * Problems with shard weights for `ranks` data-parallel ranks (none when absent): one weight per
 * rank, each a finite number > 0.
 */
function shardIssues(weights: readonly number[] | undefined, ranks: number): string[] {
  if (weights === undefined) return [];
  const issues: string[] = [];
  if (weights.length !== ranks)
    issues.push(
      `${weights.length} shard weight${weights.length === 1 ? '' : 's'} for ${ranks} data-parallel ranks`,
    );
  weights.forEach((w, r) => {
    if (!(Number.isFinite(w) && w > 0)) issues.push(`rank ${r}: shard weight ${w} is not a number > 0`);
  });
  return issues;
}

/** What schedule needs of P stages, M micro-batches and V chunks per peer (none when it fits). */
function scheduleIssues(schedule: ScheduleKind, p: number, m: number, v: number): string[] {
  if (schedule !== 'interleaved')
    return v === 1 ? [] : [`virtualStages ${v}: only the interleaved schedule holds several chunks per peer`];
  // a peer would send to itself; micro-batches cross the chunks in groups of P
  if (p < 2) return [`interleaved needs at least 2 stages, got ${p}`];
  if (m < p) return [`interleaved needs microBatches >= stages, got M = ${m} < P = ${p}`];
  return [];
}

/**
 * Runs whose whole state is one holder's parameters and optimizer (checkpoint.ts): synchronous data
 * parallel over the ring (every rank holds the same) or through one parameter server (it holds the
 * optimizer). Not yet: compression's error feedback, diloco's outer state, ps-async's versions,
 * pipeline stages, elastic epochs.
 */
export function checkpointable(
  c: Pick<z.input<typeof RunConfigObject>, 'strategy' | 'sync' | 'compress' | 'elastic' | 'psShards'>,
): boolean {
  if ((c.strategy ?? 'data') !== 'data' || (c.compress ?? 'none') !== 'none' || c.elastic === true)
    return false;
  return (c.sync ?? 'allreduce') === 'allreduce' || (c.sync === 'ps' && (c.psShards ?? 1) === 1);
}

/** Schedules an elastic pipeline redoes exactly (their stages' state is parameters + optimizer). */
const ELASTIC_SCHEDULES: readonly ScheduleKind[] = ['gpipe', '1f1b', 'zb-h1'];

/**
 * Elastic DiLoCo (worker-runtime methods/diloco-elastic.ts) redoes a round from its start: no
 * exchange may be in flight across rounds, and no codec with error feedback (it would have to roll
 * back, and a lost worker's residual leaves with it). It keeps the global batch (fixed-global).
 */
function elasticDilocoIssues(
  c: Pick<z.output<typeof RunConfigObject>, 'compress' | 'overlapOuter' | 'elasticPolicy'>,
): [string, string][] {
  const issues: [string, string][] = [];
  if (c.overlapOuter) issues.push(['overlapOuter', 'elastic diloco runs without --overlap-outer']);
  if (!['none', 'fp16', 'int8'].includes(c.compress))
    issues.push(['compress', `elastic diloco compresses with none, fp16 or int8, not ${c.compress}`]);
  if (c.elasticPolicy !== 'fixed-global')
    issues.push([
      'elasticPolicy',
      `elastic diloco keeps the global batch (fixed-global), not ${c.elasticPolicy}`,
    ]);
  return issues;
}

/**
 * What elastic and spares allow, as [field, message]: data parallel over the ring (all-reduce
 * without compression, or diloco as elasticDilocoIssues allows), or a pipeline (one replica) with
 * gpipe, 1f1b or zb-h1 and float32 or fp16 activations; spares only with an elastic pipeline, at least
 * one stage left.
 */
function elasticIssues(
  c: Pick<
    z.output<typeof RunConfigObject>,
    | 'elastic'
    | 'strategy'
    | 'sync'
    | 'compress'
    | 'schedule'
    | 'activationCompress'
    | 'spares'
    | 'workers'
    | 'overlapOuter'
    | 'elasticPolicy'
  >,
): [string, string][] {
  const issues: [string, string][] = [];
  const data = c.elastic && c.strategy === 'data';
  const pipeline = c.elastic && c.strategy === 'pipeline';
  if (c.elastic && !data && !pipeline)
    issues.push(['elastic', `elastic runs are strategy data or pipeline, not ${c.strategy}`]);
  if (data && c.sync === 'allreduce' && c.compress !== 'none')
    issues.push(['compress', `elastic all-reduce runs uncompressed, not ${c.compress}`]);
  if (data && c.sync === 'ps')
    issues.push(['sync', 'elastic data parallel runs sync allreduce, diloco or ps-async, not ps']);
  if (data && c.sync === 'diloco') issues.push(...elasticDilocoIssues(c));
  // ps-async drops a lost worker (nothing is redone): the policy's global batch does not apply.
  if (data && c.sync === 'ps-async' && c.elasticPolicy !== 'fixed-global')
    issues.push([
      'elasticPolicy',
      `elastic ps-async drops a lost worker, no policy applies (${c.elasticPolicy})`,
    ]);
  if (pipeline && !ELASTIC_SCHEDULES.includes(c.schedule))
    issues.push(['schedule', `elastic pipelines run gpipe, 1f1b or zb-h1, not ${c.schedule}`]);
  if (pipeline && c.activationCompress === 'int8')
    issues.push([
      'activationCompress',
      'elastic pipelines send float32 or fp16 activations, not int8 (its stochastic rounding is seeded per peer: a spare would round otherwise)',
    ]);
  if (c.spares > 0 && !pipeline)
    issues.push(['spares', 'spares apply to elastic pipelines (strategy pipeline, elastic)']);
  if (c.spares >= c.workers)
    issues.push(['spares', `${c.spares} spares of ${c.workers} workers leave no stage`]);
  return issues;
}

/** Everything a training session needs; sent to every worker in `assign`. Defaults resolved. */
export const RunConfigSchema = RunConfigObject.superRefine((c, ctx) => {
  const issue = (path: string, message: string): void =>
    ctx.addIssue({ code: 'custom', path: [path], message });
  shardIssues(c.shards, c.strategy === 'data' ? c.workers : c.strategy === 'hybrid' ? c.replicas : 1).forEach(
    (m) => issue('shards', m),
  );
  compressionIssues(c.compress).forEach((m) => issue('compress', m));
  if (c.psShards > 1 && !(c.sync === 'ps' || c.sync === 'ps-async'))
    issue('psShards', `server shards apply to sync ps or ps-async, not ${c.sync}`);
  if (c.strategy === 'data' && c.psShards > c.workers)
    issue('psShards', `${c.psShards} server shards for ${c.workers} workers: at most one per worker`);
  if (c.overlap && !(c.strategy === 'data' && c.sync === 'allreduce' && c.compress === 'none'))
    issue('overlap', 'overlap applies to strategy data, sync allreduce, compress none');
  elasticIssues(c).forEach(([path, msg]) => issue(path, msg));
  if (c.fillWaits && !(c.strategy === 'data' && c.sync === 'diloco' && c.overlapOuter))
    issue('fillWaits', 'fillWaits applies to strategy data, sync diloco with overlapOuter');
  if (c.fillMax !== undefined && !c.fillWaits) issue('fillMax', 'fillMax applies with fillWaits');
  if (c.checkpointEvery > 0 && !checkpointable(c))
    issue(
      'checkpointEvery',
      'checkpoints cover data parallel sync allreduce (not elastic) and ps with one server, compress none',
    );
  if (c.elasticPolicy !== 'fixed-global' && !c.elastic)
    issue('elasticPolicy', `elastic policy ${c.elasticPolicy} applies to elastic runs`);
  if (c.targetAccuracy !== undefined && c.evalEvery === 0)
    issue('evalEvery', 'a target accuracy needs evaluations: set evalEvery > 0');
  if (c.strategy === 'data') return;
  const replicas = c.strategy === 'hybrid' ? c.replicas : 1;
  if (c.strategy === 'pipeline' && c.replicas !== 1)
    issue('replicas', `pipeline runs one replica; use strategy hybrid for ${c.replicas}`);
  const stagePeers = c.workers - c.spares;
  if (stagePeers % replicas !== 0)
    issue('workers', `${stagePeers} stage workers do not split into ${replicas} replicas of equal stages`);
  if (c.strategy === 'hybrid' && c.schedule === 'interleaved')
    issue('schedule', 'interleaved runs with strategy pipeline (one replica)');
  if (c.strategy === 'hybrid' && c.sync !== 'allreduce')
    issue('sync', 'hybrid all-reduces each stage over its replicas: sync must be allreduce');
  const m = c.microBatches ?? (c.schedule === 'naive' ? 1 : DEFAULT_MICRO_BATCHES);
  if (c.schedule === 'naive' && m !== 1)
    issue('microBatches', `naive runs the whole batch at once: microBatches must be 1, got ${m}`);
  scheduleIssues(c.schedule, stagePeers / replicas, m, c.virtualStages).forEach((msg) =>
    issue(msg.startsWith('virtualStages') ? 'virtualStages' : 'microBatches', msg),
  );
  const batch = c.batch ?? DEFAULT_BATCH[c.strategy];
  if (m > batch) issue('microBatches', `${m} micro-batches need a batch of at least ${m}, got ${batch}`);
  const layers = modelPreset(c.model).layers.length;
  const chunks = (stagePeers / replicas) * c.virtualStages;
  // (virtualStages off interleaved is refused above; the stages alone are checked then.)
  const cut = c.schedule === 'interleaved' ? chunks : stagePeers / replicas;
  if (c.partition === 'auto' && stagePeers % replicas === 0 && cut > layers) {
    const deeper = MODEL_PRESETS.filter((name) => modelPreset(name).layers.length >= cut);
    const pick =
      deeper.length > 0 ? `model ${deeper.join(' or ')}, or fewer stage workers` : 'fewer stage workers';
    issue(
      'workers',
      `${cut} stages need a model of at least ${cut} layers; ${c.model} has ${layers}: ${pick}`,
    );
  }
  if (c.partition !== 'auto' && stagePeers % replicas === 0)
    readPartition(c.partition, layers, chunks).issues.forEach((m) => issue('partition', m));
}).transform((c) => ({
  ...c,
  batch: c.batch ?? DEFAULT_BATCH[c.strategy],
  microBatches:
    c.microBatches ?? (c.strategy === 'data' || c.schedule === 'naive' ? 1 : DEFAULT_MICRO_BATCHES),
  replicas: c.strategy === 'hybrid' ? c.replicas : 1,
}));
export type RunConfig = z.output<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/** The shape of a run: R replicas x P stages (data parallel: R = workers, P = 1). */
export function runShape(c: RunConfig): { replicas: number; stages: number; globalBatch: number } {
  if (c.strategy === 'data') return { replicas: c.workers, stages: 1, globalBatch: c.workers * c.batch };
  const stages = (c.workers - c.spares) / c.replicas;
  return { replicas: c.replicas, stages, globalBatch: c.replicas * c.batch };
}

/** Micro-batch mb's rows [start, end) of a batch of `batch` split into `m` near-equal parts. */
export function microBatchRange(batch: number, m: number, mb: number): { start: number; end: number } {
  return { start: Math.floor((mb * batch) / m), end: Math.floor(((mb + 1) * batch) / m) };
}

/** Unknown in, RunConfig out; throws ConfigError listing every problem. */
export function parseRunConfig(input: unknown): RunConfig {
  const r = RunConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    throw new ConfigError(
      'invalid run configuration',
      r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return r.data;
}
