import { parseArgs } from 'node:util';
import {
  BACKENDS,
  COMPUTE_PLACES,
  ConfigError,
  DEFAULT_BATCH,
  DEFAULT_MICRO_BATCHES,
  parseRunConfig,
} from '@peertrain/protocol';
import type { ComputePlace, RunConfig } from '@peertrain/protocol';
import {
  DEFAULT_CHROMIUM,
  DEFAULT_IDLE_TIMEOUT_MS,
  ChaosSpecError,
  ROOM_PATTERN,
  ROOM_RULE,
  chaosSchedule,
  parseChaosSpec,
  parseLinkSpec,
  splitFlags,
} from '@peertrain/harness';
import type { ChaosSpec, LinkSpec } from '@peertrain/harness';

/** Faults the dashboard can inject on request (fault-injection testing, not for real runs). */
export const FAULTS = ['malformed', 'vanish', 'vanish-rank0', 'vanish-rankR@K', 'slow', 'join@K'] as const;
/** 'join@K' stands for join@0, join@1, ...: one more worker joins once K steps are done. */
export type Fault =
  | Exclude<(typeof FAULTS)[number], 'join@K' | 'vanish-rankR@K'>
  | `join@${number}`
  | `vanish-rank${number}@${number}`;

export const DEFAULT_REPORT = 'peertrain-report.json';

/** Steps between checkpoints when --checkpoint-dir is given without --checkpoint-every. */
export const DEFAULT_CHECKPOINT_EVERY = 50;

/** The run configuration's own defaults, so the help text cannot drift from them. */
const D = parseRunConfig({});

export const HELP = `Usage: peertrain train [options]

Trains a model across headless Chromium tabs over WebRTC: starts the signaling and static servers,
opens the dashboard (coordinator) and N worker tabs, shows progress and writes a JSON report.

Training (defaults from the run configuration):
  --workers N            worker tabs (default ${D.workers})
  --strategy data|pipeline|hybrid
                         data: every tab holds the model; pipeline: the model is cut into one
                         stage per tab; hybrid: --replicas pipelines (default ${D.strategy})
  --sync allreduce|ps|diloco|ps-async
                         data parallel exchange: all-reduce of gradients, parameter server,
                         local steps with an outer optimizer (DiLoCo), or an asynchronous
                         parameter server with bounded staleness (default ${D.sync})
  --inner-steps H        diloco: local steps per round (default ${D.innerSteps})
  --outer-lr X           diloco: outer learning rate (default ${D.outerLr})
  --outer-momentum M     diloco: outer SGD momentum (default ${D.outerMomentum})
  --no-outer-nesterov    diloco: plain momentum instead of Nesterov
  --overlap-outer        diloco: exchange round k while round k+1 computes (applied one round late)
  --fill-waits           diloco with --overlap-outer: a worker whose round ends before the others'
                         takes extra inner steps (at most H) instead of waiting for the exchange
  --fill-max K           with --fill-waits: at most K extra steps a wait (default H; more over a
                         weak link, whose exchange outlasts H steps)
  --overlap              allreduce: reduce each gradient bucket while backward computes the earlier layers
  --staleness S          ps-async: compute on parameters at most S versions old (default ${D.staleness})
  --ps-shards K          ps, ps-async: K server peers, each owning a key range (default ${D.psShards})
  --compress none|fp16|int8|topk:FRACTION|powersgd:RANK
                         compression of every exchanged tensor (default ${D.compress})
  --target-accuracy A    stop once a test evaluation reaches A (0-1; evaluated every --eval-every)
  --model mlp|cnn|deepMlp|wideMlp
                         model (default ${D.model})
  --dataset mnist|synthetic                                         (default ${D.dataset})
  --steps K              training steps (default ${D.steps})
  --batch B              data: batch per worker, global batch N*B (default ${DEFAULT_BATCH.data});
                         pipeline/hybrid: batch per pipeline (default ${DEFAULT_BATCH.pipeline})
  --lr X                 learning rate (default ${D.lr})
  --optimizer sgd|adam   (default sgd with momentum 0.9)
  --momentum M           SGD momentum (sgd only; default 0.9)
  --seed S               random seed (default ${D.seed})
  --backend auto|${BACKENDS.join('|')}
                         compute backend of the workers (default auto: fastest measured)
  --eval-every N         evaluate test accuracy every N steps, 0 = at the end (default ${D.evalEvery})
  --bucket-elems N       all-reduce bucket size in float32 elements (default ${D.bucketElems})
  --all-reduce auto|ring|pairwise|direct
                         how a fp32 all-reduce sums (default auto: direct for small tensors,
                         pairwise in 2 hops up to 16 workers, the ring past them)
  --reference            also train the single-worker reference and report the difference
  --elastic              allreduce: a lost worker ends the epoch, not the run; the survivors redo the step.
                         diloco (compress none|fp16|int8, no --overlap-outer): the survivors redo the
                         round, training the lost worker's shard too; a newcomer joins at a round's start.
                         ps-async: a lost worker that serves nothing is dropped, the others go on.
                         pipeline (gpipe, 1f1b): a lost stage's layers go to a spare (--spares) and
                         every stage redoes from its newest snapshot (--stage-checkpoint-every)
  --elastic-policy fixed-global|scaled-lr
                         elastic: fixed-global keeps the global batch (the survivors compute the lost
                         workers' samples: equals the undisturbed run and the reference); scaled-lr
                         keeps each worker's batch and scales the lr by members/N (default ${D.elasticPolicy})
  --heartbeat-timeout SEC
                         a worker that sends nothing for SEC seconds (heartbeats go every second;
                         a frozen tab) is lost with cause heartbeat: --elastic goes on without it
                         and readmits it when it speaks again, other runs fail (default ${D.heartbeatTimeoutMs / 1000})

Pipeline and hybrid:
  --schedule naive|gpipe|1f1b|interleaved|zb-h1
                         pipeline schedule (default ${D.schedule})
  --virtual-stages V     interleaved: model chunks per peer (default 1)
  --micro-batches M      micro-batches per step (default ${DEFAULT_MICRO_BATCHES}; naive: 1)
  --recompute            keep only each stage's input; recompute the forward in backward
  --activation-compress none|fp16|int8
                         codec of the activations and gradients between stages (default none)
  --no-skip-zeros        send the zeros between stages too (default: a ReLU's zeros, and its
                         gradient's, cross as a bit mask; lossless)
  --partition auto|RANGES
                         stage layers, e.g. 0-2,3-5,6-7 (default auto: planned from per-layer
                         costs measured on each worker, within each device's memory)
  --replicas R           hybrid: R pipelines of workers/R stages (default 1)
  --spares K             --elastic pipeline: K of the --workers are idle spares, the rest stages
                         (e.g. --workers 5 --spares 1: 4 stages and a spare) (default 0)
  --stage-checkpoint-every K
                         --elastic pipeline: each stage sends the coordinator its parameters and
                         optimizer state every K steps; a loss redoes the steps since (default ${D.stageCheckpointEvery})

Runner:
  --report FILE          JSON report path (default ${DEFAULT_REPORT})
  --trace FILE           write every span as Chrome trace JSON (open in https://ui.perfetto.dev)
  --screenshot FILE      save a PNG of the whole dashboard page when the run is done (peers,
                         charts, timeline, report)
  --export-model DIR     write the trained model as TensorFlow.js files (DIR/model.json and
                         DIR/weights.bin; load with tf.loadLayersModel)
  --one-profile          open every tab in one browser profile, as a person opening several tabs
                         does: tabs of one profile link through the browser (MessagePorts), not
                         WebRTC (default: each tab its own profile, linked as separate devices)
  --compute thread|page  where each worker tab computes: a thread of its own (a dedicated Worker;
                         the tab's links are served while steps compute) or the tab's page thread
                         (default: the worker page's own, page)
  --isolated-network     run inside a private network namespace (Linux, root; unshare + ip).
                         Without it, WebRTC is probed first and the namespace is used
                         automatically when data channels cannot connect otherwise.
  --link SPEC            impair the peers' links (UDP) in the private network namespace (implies
                         --isolated-network): rate=20mbit,loss=2%,delay=40ms, any subset; delay
                         is one-way (needs python3 and /dev/net/tun)
  --chromium PATH        Chromium executable (default ${DEFAULT_CHROMIUM})
  --gpu                  use this machine's GPU through Vulkan (NVIDIA on Linux): adds the Chromium
                         flags and driver variables headless Chromium needs (README: Train on a GPU
                         server); without it WebGPU runs on SwiftShader, the CPU
  --chromium-flags "..." extra Chromium flags, space-separated (quotes keep a value together);
                         --enable-features values are merged with the others
  --room ID              room id (default random)
  --idle-timeout SEC     fail when the session reports nothing for this long (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})
  --dist DIR             serve this prebuilt bundle instead of building dist/ when stale
  --checkpoint-dir DIR   checkpoint the parameters and optimizer state into DIR (atomically; the
                         latest is kept: DIR/latest.json + its blob) every --checkpoint-every steps
  --checkpoint-every K   steps between checkpoints (default ${DEFAULT_CHECKPOINT_EVERY} with --checkpoint-dir;
                         data parallel allreduce, or ps with one server; no compression)
  --resume DIR           continue from DIR's latest checkpoint (same configuration; --steps may
                         grow): ends with the parameters of a run never stopped
  --inject-fault KIND    FAULT INJECTION for testing: ${FAULTS.join(', ')}. malformed: a worker sends
                         malformed frames; the run must refuse them and go on. vanish: the last
                         worker's tab closes after step 3; the run must fail naming the lost peer
                         and keep the steps done in a partial report (with --elastic it must
                         finish every step). vanish-rank0: the same with rank 0's tab (--elastic:
                         the lowest surviving rank evaluates and hands back the model).
                         vanish-rankR@K: rank R's tab closes once K steps are done (an --elastic
                         pipeline's stage R: a spare takes its layers). slow: the
                         last worker computes 3x slower (with --sync ps-async only it should slow
                         down). join@K (--elastic): one more worker tab opens once K steps are
                         done and joins the run at step K. Repeatable.
  --chaos SPEC           CHAOS TESTING: kill, freeze and slow worker tabs at seeded random steps,
                         e.g. kill=1,freeze=1:15s,slow=1:3x,seed=7. Parts (comma-separated, each
                         once): kill=N (close N tabs, no goodbye; with --elastic the run goes on),
                         freeze=N:DURATION (N freezes: CDP Page.setWebLifecycleState frozen, thawed
                         after DURATION, e.g. 15s or 500ms), slow=N:Fx[:DURATION] (N times a tab's CPU
                         throttled F times, to the end without DURATION), hide=N (the last N worker
                         tabs hidden for the whole run: minimized, background throttling on),
                         seed=S (default --seed),
                         steps=A-B (steps drawn from; default 1 to steps-2). Rank 0 is never hit;
                         the schedule and what was done go to the report (harness.chaos)
  --quiet                no progress bar or log lines (errors and the summary still print)
  --verbose              also print every console message of every page
  -h, --help             this help

Exit status: 0 success, 1 failure, 2 invalid command line or configuration, 130 interrupted.
`;

export interface RunnerOptions {
  report: string;
  trace: string | undefined;
  /** --screenshot: a PNG of the dashboard page when the run is done. */
  screenshot: string | undefined;
  exportModel: string | undefined;
  /** --checkpoint-dir: where the run's checkpoints are written. */
  checkpointDir: string | undefined;
  /** --resume: the directory whose latest checkpoint the run continues from. */
  resume: string | undefined;
  isolatedNetwork: boolean;
  /** --one-profile: every tab in one browser profile (tab links instead of WebRTC between them). */
  oneProfile: boolean;
  /** --compute: where the worker tabs' engines compute; undefined: the page's default. */
  compute: ComputePlace | undefined;
  /** --link: impair the peers' UDP inside the namespace. */
  link: LinkSpec | undefined;
  chromium: string;
  /** Launch Chromium with the GPU flags and environment (harness chromiumFlags/gpuEnv). */
  gpu: boolean;
  /** Extra Chromium flags (--chromium-flags), after the base and GPU ones. */
  chromiumFlags: string[];
  room: string | undefined;
  idleTimeoutMs: number;
  dist: string | undefined;
  faults: Fault[];
  /** --chaos: kills, freezes and slowdowns at seeded steps (checked against the run's size). */
  chaos: ChaosSpec | undefined;
  quiet: boolean;
  verbose: boolean;
}

export type Command = { kind: 'help' } | { kind: 'train'; config: RunConfig; runner: RunnerOptions };

const OPTIONS = {
  workers: { type: 'string' },
  strategy: { type: 'string' },
  sync: { type: 'string' },
  'inner-steps': { type: 'string' },
  'outer-lr': { type: 'string' },
  'outer-momentum': { type: 'string' },
  'no-outer-nesterov': { type: 'boolean' },
  'overlap-outer': { type: 'boolean' },
  'fill-waits': { type: 'boolean' },
  'fill-max': { type: 'string' },
  overlap: { type: 'boolean' },
  staleness: { type: 'string' },
  'ps-shards': { type: 'string' },
  compress: { type: 'string' },
  'target-accuracy': { type: 'string' },
  model: { type: 'string' },
  dataset: { type: 'string' },
  steps: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  momentum: { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  'eval-every': { type: 'string' },
  'bucket-elems': { type: 'string' },
  'all-reduce': { type: 'string' },
  reference: { type: 'boolean' },
  elastic: { type: 'boolean' },
  'elastic-policy': { type: 'string' },
  'heartbeat-timeout': { type: 'string' },
  chaos: { type: 'string' },
  schedule: { type: 'string' },
  'virtual-stages': { type: 'string' },
  'micro-batches': { type: 'string' },
  recompute: { type: 'boolean' },
  'activation-compress': { type: 'string' },
  'no-skip-zeros': { type: 'boolean' },
  partition: { type: 'string' },
  replicas: { type: 'string' },
  spares: { type: 'string' },
  'stage-checkpoint-every': { type: 'string' },
  report: { type: 'string' },
  trace: { type: 'string' },
  'export-model': { type: 'string' },
  'checkpoint-dir': { type: 'string' },
  screenshot: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  resume: { type: 'string' },
  'isolated-network': { type: 'boolean' },
  'one-profile': { type: 'boolean' },
  compute: { type: 'string' },
  link: { type: 'string' },
  chromium: { type: 'string' },
  gpu: { type: 'boolean' },
  'chromium-flags': { type: 'string' },
  room: { type: 'string' },
  'idle-timeout': { type: 'string' },
  dist: { type: 'string' },
  'inject-fault': { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A number option: the whole string must be a finite number (no '', '12abc', 'Infinity'). */
function toNumber(flag: string, raw: string, issues: string[]): number | undefined {
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n)) {
    issues.push(`--${flag}: expected a number, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  return n;
}

/** --heartbeat-timeout SEC -> ms: 0.5 to 600 seconds (the schema's range, said in seconds). */
function heartbeatTimeoutMs(raw: string | undefined, issues: string[]): number | undefined {
  if (raw === undefined) return undefined;
  const sec = toNumber('heartbeat-timeout', raw, issues);
  if (sec === undefined) return undefined;
  if (!(sec >= 0.5 && sec <= 600)) {
    issues.push(`--heartbeat-timeout: expected 0.5 to 600 seconds, got ${raw}`);
    return undefined;
  }
  return Math.round(sec * 1000);
}

/** Config keys as the command line spells them, for the schema's issue paths. */
const FLAG_OF: Record<string, string> = {
  evalEvery: 'eval-every',
  bucketElems: 'bucket-elems',
  allReduce: 'all-reduce',
  microBatches: 'micro-batches',
  innerSteps: 'inner-steps',
  outerLr: 'outer-lr',
  outerMomentum: 'outer-momentum',
  overlapOuter: 'overlap-outer',
  fillWaits: 'fill-waits',
  fillMax: 'fill-max',
  psShards: 'ps-shards',
  targetAccuracy: 'target-accuracy',
  virtualStages: 'virtual-stages',
  checkpointEvery: 'checkpoint-every',
  stageCheckpointEvery: 'stage-checkpoint-every',
  elasticPolicy: 'elastic-policy',
  heartbeatTimeoutMs: 'heartbeat-timeout',
  'optimizer.momentum': 'momentum',
  'optimizer.kind': 'optimizer',
};

/** "evalEvery: Too small..." -> "--eval-every: Too small...". */
function issueAsFlag(issue: string): string {
  const colon = issue.indexOf(': ');
  if (colon < 0) return issue;
  const path = issue.slice(0, colon);
  return `--${FLAG_OF[path] ?? path}${issue.slice(colon)}`;
}

/**
 * `--chromium-flags "--a --b"` as `--chromium-flags=--a --b`: node's parseArgs refuses a separate
 * value that starts with a dash, and this one always does.
 */
export function joinFlagValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a === '--chromium-flags' && next !== undefined) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * Parses `peertrain <command> [options]` (argv without node and script). Returns the run config
 * input (only what was given; the schema supplies defaults) and the runner options. Throws
 * ConfigError listing every problem: unknown options, non-numbers, invalid enum values, ranges
 * (the latter checked with parseRunConfig so the messages match the schema).
 */
export function parseCommandLine(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinFlagValues(argv),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // Node's message goes on about '--' positionals; the first sentence is the point.
    const message =
      err instanceof Error ? (err.message.split('. To specify')[0] ?? err.message) : String(err);
    throw new ConfigError('invalid command line', [message]);
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals[0] === 'help') return { kind: 'help' };
  if (positionals.length === 0)
    throw new ConfigError('missing command', ['expected `peertrain train [options]`']);
  if (positionals[0] !== 'train')
    throw new ConfigError('unknown command', [`${positionals[0]} (expected train)`]);
  if (positionals.length > 1) throw new ConfigError('unexpected arguments', positionals.slice(1));

  const issues: string[] = [];
  const config: Record<string, unknown> = {};
  const numeric: [
    flag:
      | 'workers'
      | 'steps'
      | 'batch'
      | 'lr'
      | 'seed'
      | 'eval-every'
      | 'bucket-elems'
      | 'micro-batches'
      | 'replicas'
      | 'inner-steps'
      | 'fill-max'
      | 'outer-lr'
      | 'outer-momentum'
      | 'staleness'
      | 'ps-shards'
      | 'target-accuracy'
      | 'virtual-stages'
      | 'checkpoint-every'
      | 'spares'
      | 'stage-checkpoint-every',
    key: string,
  ][] = [
    ['workers', 'workers'],
    ['steps', 'steps'],
    ['batch', 'batch'],
    ['lr', 'lr'],
    ['seed', 'seed'],
    ['eval-every', 'evalEvery'],
    ['bucket-elems', 'bucketElems'],
    ['micro-batches', 'microBatches'],
    ['replicas', 'replicas'],
    ['inner-steps', 'innerSteps'],
    ['fill-max', 'fillMax'],
    ['outer-lr', 'outerLr'],
    ['outer-momentum', 'outerMomentum'],
    ['staleness', 'staleness'],
    ['ps-shards', 'psShards'],
    ['target-accuracy', 'targetAccuracy'],
    ['virtual-stages', 'virtualStages'],
    ['checkpoint-every', 'checkpointEvery'],
    ['spares', 'spares'],
    ['stage-checkpoint-every', 'stageCheckpointEvery'],
  ];
  for (const [flag, key] of numeric) {
    const raw = values[flag];
    if (typeof raw === 'string') {
      const n = toNumber(flag, raw, issues);
      if (n !== undefined) config[key] = n;
    }
  }
  for (const key of [
    'strategy',
    'sync',
    'model',
    'dataset',
    'backend',
    'schedule',
    'partition',
    'compress',
  ] as const) {
    if (values[key] !== undefined) config[key] = values[key];
  }
  if (values.reference === true) config.reference = true;
  if (values.elastic === true) config.elastic = true;
  if (values['elastic-policy'] !== undefined) config.elasticPolicy = values['elastic-policy'];
  if (values['all-reduce'] !== undefined) config.allReduce = values['all-reduce'];
  const heartbeat = heartbeatTimeoutMs(values['heartbeat-timeout'], issues);
  if (heartbeat !== undefined) config.heartbeatTimeoutMs = heartbeat;
  if (values.recompute === true) config.recompute = true;
  if (values['activation-compress'] !== undefined) config.activationCompress = values['activation-compress'];
  if (values['no-skip-zeros'] === true) config.activationSkipZeros = false;
  if (values['no-outer-nesterov'] === true) config.outerNesterov = false;
  if (values['overlap-outer'] === true) config.overlapOuter = true;
  if (values['fill-waits'] === true) config.fillWaits = true;
  if (values.overlap === true) config.overlap = true;
  if (values['checkpoint-dir'] !== undefined && config.checkpointEvery === undefined)
    config.checkpointEvery = DEFAULT_CHECKPOINT_EVERY;

  const momentum = values.momentum === undefined ? undefined : toNumber('momentum', values.momentum, issues);
  const optimizer = values.optimizer ?? (values.momentum !== undefined ? 'sgd' : undefined);
  if (optimizer === 'adam') {
    if (values.momentum !== undefined) issues.push('--momentum applies only to --optimizer sgd');
    config.optimizer = { kind: 'adam' };
  } else if (optimizer === 'sgd') {
    const defaults = parseRunConfig({}).optimizer;
    const fallback = defaults.kind === 'sgd' ? defaults.momentum : 0;
    config.optimizer = { kind: 'sgd', momentum: momentum ?? fallback };
  } else if (optimizer !== undefined) {
    issues.push(`--optimizer: expected sgd or adam, got ${JSON.stringify(optimizer)}`);
  }

  const faults: Fault[] = [];
  for (const f of values['inject-fault'] ?? []) {
    if (f !== 'join@K' && f !== 'vanish-rankR@K' && (FAULTS as readonly string[]).includes(f))
      faults.push(f as Fault);
    else if (/^join@\d+$/.test(f)) faults.push(f as `join@${number}`);
    else if (/^vanish-rank\d+@\d+$/.test(f)) faults.push(f as `vanish-rank${number}@${number}`);
    else issues.push(`--inject-fault: expected one of ${FAULTS.join(', ')}, got ${JSON.stringify(f)}`);
  }

  const compute = values.compute;
  if (compute !== undefined && !(COMPUTE_PLACES as readonly string[]).includes(compute))
    issues.push(`--compute: expected ${COMPUTE_PLACES.join(' or ')}, got ${JSON.stringify(compute)}`);

  let idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS;
  if (values['idle-timeout'] !== undefined) {
    const s = toNumber('idle-timeout', values['idle-timeout'], issues);
    if (s !== undefined && s <= 0) issues.push('--idle-timeout: must be positive');
    else if (s !== undefined) idleTimeoutMs = Math.round(s * 1000);
  }
  if (values.quiet === true && values.verbose === true)
    issues.push('--quiet and --verbose exclude each other');
  if (values.room !== undefined && !ROOM_PATTERN.test(values.room)) {
    issues.push(`--room: ${ROOM_RULE}`);
  }

  let link: LinkSpec | undefined;
  try {
    if (values.link !== undefined) link = parseLinkSpec(values.link);
  } catch (err) {
    if (err instanceof ConfigError) issues.push(...err.issues.map((issue) => `--link ${issue}`));
    else throw err;
  }
  let chromiumFlags: string[] = [];
  try {
    chromiumFlags = splitFlags(values['chromium-flags'] ?? '');
  } catch (err) {
    issues.push(`--chromium-flags: ${err instanceof Error ? err.message : String(err)}`);
  }

  // Schema problems (ranges, enum values) in the same list as ours.
  let runConfig: RunConfig | undefined;
  try {
    runConfig = parseRunConfig(config);
  } catch (err) {
    if (err instanceof ConfigError) issues.push(...err.issues.map(issueAsFlag));
    else throw err;
  }
  let chaos: ChaosSpec | undefined;
  try {
    if (values.chaos !== undefined) chaos = parseChaosSpec(values.chaos);
    // The schedule needs the run's size: a spec the run cannot hold is a bad command line too.
    if (chaos && runConfig) chaosSchedule(chaos, runConfig);
  } catch (err) {
    if (err instanceof ChaosSpecError) issues.push(...err.issues.map((issue) => `--chaos ${issue}`));
    else throw err;
  }
  if (issues.length > 0 || runConfig === undefined) throw new ConfigError('invalid options', issues);

  return {
    kind: 'train',
    config: runConfig,
    runner: {
      report: values.report ?? DEFAULT_REPORT,
      trace: values.trace,
      screenshot: values.screenshot,
      exportModel: values['export-model'],
      checkpointDir: values['checkpoint-dir'],
      resume: values.resume,
      isolatedNetwork: values['isolated-network'] === true,
      oneProfile: values['one-profile'] === true,
      compute: compute as ComputePlace | undefined,
      link,
      chromium: values.chromium ?? DEFAULT_CHROMIUM,
      gpu: values.gpu === true,
      chromiumFlags,
      room: values.room,
      idleTimeoutMs,
      dist: values.dist,
      faults,
      chaos,
      quiet: values.quiet === true,
      verbose: values.verbose === true,
    },
  };
}
