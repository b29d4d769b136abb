import {
  ConfigError,
  DATASETS,
  DEFAULT_BATCH,
  DEFAULT_MICRO_BATCHES,
  modelPreset,
  parseRunConfig,
  runShape,
  type BackendName,
  type RunConfig,
  type ScheduleKind,
  type Strategy,
} from '@peertrain/protocol';

// The run form edits strings (so a half-typed number is not lost); this turns them into a
// validated RunConfig, with one message per bad field, each tied to the field that shows it.

/**
 * What the form offers: the protocol's strategies, with data parallelism split by its sync
 * (a parameter server run is strategy 'data' with sync 'ps'; local steps are sync 'diloco').
 */
export type StrategyChoice = 'data' | 'ps' | 'diloco' | 'ps-async' | 'pipeline' | 'hybrid';

export const STRATEGY_CHOICES: readonly (readonly [StrategyChoice, string])[] = [
  ['data', 'data parallel (all-reduce)'],
  ['ps', 'parameter server'],
  ['diloco', 'local steps + outer optimizer (DiLoCo)'],
  ['ps-async', 'asynchronous parameter server'],
  ['pipeline', 'pipeline'],
  ['hybrid', 'hybrid (pipeline × data)'],
];

/** The compression kinds the form offers; topk takes a fraction, powersgd a rank. */
export type CompressKind = 'none' | 'fp16' | 'int8' | 'topk' | 'powersgd';

export const COMPRESS_CHOICES: readonly (readonly [CompressKind, string])[] = [
  ['none', 'none (fp32)'],
  ['fp16', 'fp16'],
  ['int8', 'int8'],
  ['topk', 'top-k'],
  ['powersgd', 'PowerSGD'],
];

/** The argument a compression kind takes, and its default. */
export function compressArg(kind: CompressKind): { label: string; default: string } | null {
  if (kind === 'topk') return { label: 'top-k fraction', default: '0.01' };
  if (kind === 'powersgd') return { label: 'PowerSGD rank', default: '4' };
  return null;
}

export interface RunFormState {
  workers: string;
  strategy: StrategyChoice;
  model: RunConfig['model'];
  dataset: RunConfig['dataset'];
  steps: string;
  /** Per worker (data) or per replica (pipeline, hybrid). */
  batch: string;
  lr: string;
  optimizer: RunConfig['optimizer']['kind'];
  /** SGD momentum; ignored for Adam. */
  momentum: string;
  seed: string;
  backend: 'auto' | BackendName;
  reference: boolean;
  // ---- pipeline and hybrid only ----
  schedule: ScheduleKind;
  /** Interleaved only: model chunks per peer (V); the other schedules hold one. */
  virtualStages: string;
  /** Blank: the protocol's default for the schedule. */
  microBatches: string;
  recompute: boolean;
  /** 'auto' (or blank): the planner cuts; else inclusive layer ranges "0-2,3-5,6-8". */
  partition: string;
  replicas: string;
  // ---- data parallel only ----
  /** Samples per worker's shard, one per worker; null: equal shards (the default). */
  shards: string[] | null;
  // ---- diloco only ----
  innerSteps: string;
  outerLr: string;
  outerMomentum: string;
  outerNesterov: boolean;
  overlapOuter: boolean;
  /** With overlapOuter: fill a wait for the exchange with extra inner steps. */
  fillWaits: boolean;
  /** With fillWaits: at most this many extra steps a wait; blank: H (the config's default). */
  fillMax: string;
  // ---- ps-async (staleness), ps and ps-async (server shards) ----
  staleness: string;
  psShards: string;
  // ---- data parallel (all-reduce, diloco, ps-async) and pipeline ----
  /**
   * config.elastic. Data parallel: a lost worker ends the epoch, not the run; a newcomer joins
   * mid-run. Pipeline: a lost stage's layers go to a spare.
   */
  elastic: boolean;
  /** Elastic pipelines: how many of the workers wait as spares (config.spares). */
  spares: string;
  // ---- every method ----
  compress: CompressKind;
  /** topk: the fraction; powersgd: the rank (ignored otherwise). */
  compressArg: string;
  /** 0-1; blank: no target (run every step). */
  targetAccuracy: string;
}

export type RunFormField = keyof RunFormState;

/** The protocol's schedules as the form offers them. */
export const SCHEDULE_CHOICES: readonly (readonly [ScheduleKind, string])[] = [
  ['1f1b', '1F1B'],
  ['gpipe', 'GPipe'],
  ['naive', 'naive (no micro-batches)'],
  ['interleaved', 'interleaved 1F1B'],
  ['zb-h1', 'zero bubble (ZB-H1)'],
];

/** Chunks per peer the form starts an interleaved run with (Megatron-LM's usual 2). */
export const DEFAULT_VIRTUAL_STAGES = 2;

/** The protocol strategy of a form choice. */
export function protocolStrategy(choice: StrategyChoice): Strategy {
  return choice === 'pipeline' || choice === 'hybrid' ? choice : 'data';
}

/** The protocol sync of a form choice. */
function protocolSync(choice: StrategyChoice): RunConfig['sync'] {
  return choice === 'ps' || choice === 'diloco' || choice === 'ps-async' ? choice : 'allreduce';
}

/** The choices whose workers are parameter servers (server shards apply). */
export function hasServer(choice: StrategyChoice): boolean {
  return choice === 'ps' || choice === 'ps-async';
}

/** The choices the form offers elastic runs for (a pipeline with spares; hybrids are not elastic). */
export function isElasticChoice(choice: StrategyChoice): boolean {
  return choice === 'data' || choice === 'diloco' || choice === 'ps-async' || choice === 'pipeline';
}

/** Spares the form's text asks for: an elastic pipeline's, else 0 (NaN while not a number). */
export function formSpares(form: Pick<RunFormState, 'strategy' | 'elastic' | 'spares'>): number {
  if (form.strategy !== 'pipeline' || !form.elastic) return 0;
  const t = form.spares.trim();
  return t === '' ? NaN : Number(t);
}

/** What a closed tab costs an elastic run of `sync`, for the shape line. */
function elasticCost(sync: RunConfig['sync']): string {
  if (sync === 'diloco') return 'a closed tab costs a round';
  if (sync === 'ps-async') return "a closed tab stops only its own pushes (not a server's)";
  return 'a closed tab costs a step';
}

export function isPipelined(choice: StrategyChoice): boolean {
  return choice === 'pipeline' || choice === 'hybrid';
}

function strategyChoice(c: RunConfig): StrategyChoice {
  return c.strategy === 'data' && c.sync !== 'allreduce' ? c.sync : c.strategy;
}

/** "topk:0.01" -> topk and "0.01"; a kind without an argument gets its default argument back. */
function splitCompress(spec: string): { compress: CompressKind; compressArg: string } {
  const [kind = 'none', arg] = spec.split(':');
  const compress = COMPRESS_CHOICES.some(([k]) => k === kind) ? (kind as CompressKind) : 'none';
  return { compress, compressArg: arg ?? compressArg(compress)?.default ?? '' };
}

export function initialRunForm(defaults: RunConfig = parseRunConfig({})): RunFormState {
  return {
    workers: String(defaults.workers),
    strategy: strategyChoice(defaults),
    model: defaults.model,
    dataset: defaults.dataset,
    steps: String(defaults.steps),
    batch: String(defaults.batch),
    lr: String(defaults.lr),
    optimizer: defaults.optimizer.kind,
    momentum: String(defaults.optimizer.kind === 'sgd' ? defaults.optimizer.momentum : 0.9),
    seed: String(defaults.seed),
    backend: defaults.backend,
    reference: defaults.reference,
    schedule: defaults.schedule,
    virtualStages: String(
      defaults.schedule === 'interleaved' ? defaults.virtualStages : DEFAULT_VIRTUAL_STAGES,
    ),
    microBatches: defaults.strategy === 'data' ? '' : String(defaults.microBatches),
    recompute: defaults.recompute,
    partition: defaults.partition,
    replicas: String(defaults.replicas),
    shards: defaults.shards?.map(String) ?? null,
    innerSteps: String(defaults.innerSteps),
    outerLr: String(defaults.outerLr),
    outerMomentum: String(defaults.outerMomentum),
    outerNesterov: defaults.outerNesterov,
    overlapOuter: defaults.overlapOuter,
    fillWaits: defaults.fillWaits,
    fillMax: defaults.fillMax === undefined ? '' : String(defaults.fillMax),
    staleness: String(defaults.staleness),
    psShards: String(defaults.psShards),
    elastic: defaults.elastic && defaults.strategy !== 'hybrid',
    spares: String(defaults.elastic && defaults.strategy === 'pipeline' ? defaults.spares : 1),
    ...splitCompress(defaults.compress),
    targetAccuracy: defaults.targetAccuracy === undefined ? '' : String(defaults.targetAccuracy),
  };
}

/** The form after picking another compression kind: its argument's default unless one was typed for it. */
export function withCompress(form: RunFormState, next: CompressKind): RunFormState {
  const before = compressArg(form.compress);
  const typed = before !== null && form.compressArg.trim() !== before.default;
  const same = form.compress === next;
  return {
    ...form,
    compress: next,
    compressArg: same && typed ? form.compressArg : (compressArg(next)?.default ?? ''),
  };
}

/**
 * The form after picking another strategy. The batch follows the new strategy's default while the
 * user has not changed it (data batches are per worker, pipeline batches per replica), and hybrid
 * starts at 2 replicas (1 would be a plain pipeline).
 */
export function withStrategy(form: RunFormState, next: StrategyChoice): RunFormState {
  const before = DEFAULT_BATCH[protocolStrategy(form.strategy)];
  const batch =
    form.batch.trim() === String(before) ? String(DEFAULT_BATCH[protocolStrategy(next)]) : form.batch;
  const replicas = next === 'hybrid' && form.replicas.trim() === '1' ? '2' : form.replicas;
  return { ...form, strategy: next, batch, replicas };
}

const FORM_FIELDS: ReadonlySet<string> = new Set(Object.keys(initialRunForm()));

/** Config paths (as ConfigError issues name them) that the form shows under another field. */
const FIELD_OF_PATH: Readonly<Record<string, RunFormField>> = {
  sync: 'strategy',
  strategy: 'strategy',
  optimizer: 'optimizer',
  'optimizer.momentum': 'momentum',
};

/**
 * An issue "path: message" split into the form field that shows it (null: the form as a whole)
 * and the message.
 */
export function issueField(issue: string): { field: RunFormField | null; message: string } {
  const colon = issue.indexOf(': ');
  if (colon < 0) return { field: null, message: issue };
  const path = issue.slice(0, colon);
  const message = issue.slice(colon + 2);
  const mapped = FIELD_OF_PATH[path];
  if (mapped) return { field: mapped, message };
  return FORM_FIELDS.has(path) ? { field: path as RunFormField, message } : { field: null, message: issue };
}

/** Issues grouped by the field that shows them; form-wide ones under `null`. */
export function issuesByField(issues: readonly string[]): Map<RunFormField | null, string[]> {
  const out = new Map<RunFormField | null, string[]>();
  for (const issue of issues) {
    const { field, message } = issueField(issue);
    const list = out.get(field) ?? [];
    list.push(message);
    out.set(field, list);
  }
  return out;
}

/**
 * Shard sizes typed per worker: whole numbers >= 1 that sum to at most the train set (the editor
 * keeps them summing to it). The protocol checks that there is one per worker.
 */
function shardCountIssues(texts: readonly string[], train: number): { counts: number[]; issues: string[] } {
  const issues: string[] = [];
  const counts = texts.map((t, r) => {
    const v = Number(t.trim());
    if (t.trim() === '' || !Number.isInteger(v) || v < 1)
      issues.push(`shards: worker ${r}: "${t}" is not a whole number of samples >= 1`);
    return v;
  });
  const sum = counts.reduce((a, b) => a + b, 0);
  if (issues.length === 0 && sum > train)
    issues.push(`shards: the shards hold ${sum} samples; the train set has ${train}`);
  return { counts, issues };
}

/** Form -> RunConfig; throws ConfigError listing every bad field ("field: message"). */
export function runFormToConfig(form: RunFormState): RunConfig {
  const issues: string[] = [];
  const num = (field: RunFormField, text: string): number | undefined => {
    const t = text.trim();
    const v = t === '' ? NaN : Number(t);
    if (Number.isFinite(v)) return v;
    issues.push(`${field}: "${text}" is not a number`);
    return undefined;
  };
  const input: Record<string, unknown> = {
    strategy: protocolStrategy(form.strategy),
    sync: protocolSync(form.strategy),
    model: form.model,
    dataset: form.dataset,
    workers: num('workers', form.workers),
    steps: num('steps', form.steps),
    batch: num('batch', form.batch),
    lr: num('lr', form.lr),
    optimizer:
      form.optimizer === 'sgd' ? { kind: 'sgd', momentum: num('momentum', form.momentum) } : { kind: 'adam' },
    seed: num('seed', form.seed),
    backend: form.backend,
    reference: form.reference,
  };
  Object.assign(input, methodInput(form, num));
  if (!isPipelined(form.strategy) && form.shards !== null) {
    const shards = shardCountIssues(form.shards, DATASETS[form.dataset].train);
    issues.push(...shards.issues);
    if (shards.issues.length === 0) input.shards = shards.counts;
  }
  if (isPipelined(form.strategy)) {
    input.schedule = form.schedule;
    // Only interleaved holds several chunks per peer: a V typed and then abandoned must not leak.
    if (form.schedule === 'interleaved') input.virtualStages = num('virtualStages', form.virtualStages);
    input.recompute = form.recompute;
    if (form.microBatches.trim() !== '') input.microBatches = num('microBatches', form.microBatches);
    if (form.strategy === 'hybrid') input.replicas = num('replicas', form.replicas);
    const partition = form.partition.trim();
    // The schema checks the ranges against the model's layers and the stage count; while workers or
    // replicas are not numbers that count is unknown, and their own issue says enough.
    const shapeKnown =
      input.workers !== undefined && (form.strategy !== 'hybrid' || input.replicas !== undefined);
    if (partition !== '' && partition !== 'auto' && shapeKnown) input.partition = partition;
  }
  // Fields that are not numbers are left out (the schema's default stands in) so that the schema
  // still reports every other problem in the same pass.
  for (const [k, v] of Object.entries(input)) if (v === undefined) delete input[k];
  const optimizer = input.optimizer as { momentum?: number };
  if (optimizer.momentum === undefined) delete optimizer.momentum;
  let config: RunConfig | null = null;
  try {
    config = parseRunConfig(input);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
  }
  if (config === null || issues.length > 0) throw new ConfigError('invalid run configuration', issues);
  return config;
}

/**
 * The method settings of the form's choice (only those: the schema defaults the rest), the
 * compression spec and the target. Numbers that do not parse come back undefined (and are named
 * by `num`).
 */
function methodInput(
  form: RunFormState,
  num: (field: RunFormField, text: string) => number | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (form.strategy === 'diloco') {
    out.innerSteps = num('innerSteps', form.innerSteps);
    out.outerLr = num('outerLr', form.outerLr);
    out.outerMomentum = num('outerMomentum', form.outerMomentum);
    out.outerNesterov = form.outerNesterov;
    out.overlapOuter = form.overlapOuter;
    // The box shows only with overlap: a tick left from before is not a config error.
    if (form.overlapOuter && form.fillWaits) {
      out.fillWaits = true;
      if (form.fillMax.trim() !== '') out.fillMax = num('fillMax', form.fillMax);
    }
  }
  if (form.elastic && isElasticChoice(form.strategy)) out.elastic = true;
  if (form.elastic && form.strategy === 'pipeline') out.spares = num('spares', form.spares);
  if (form.strategy === 'ps-async') out.staleness = num('staleness', form.staleness);
  if (hasServer(form.strategy)) out.psShards = num('psShards', form.psShards);
  if (!isPipelined(form.strategy) && form.compress !== 'none') {
    const arg = compressArg(form.compress) ? `:${form.compressArg.trim()}` : '';
    out.compress = `${form.compress}${arg}`;
  }
  if (form.targetAccuracy.trim() !== '') out.targetAccuracy = num('targetAccuracy', form.targetAccuracy);
  return out;
}

export type FormCheck = { ok: true; config: RunConfig } | { ok: false; issues: string[] };

/** runFormToConfig without the throw, for validating as the user types. */
export function checkRunForm(form: RunFormState): FormCheck {
  try {
    return { ok: true, config: runFormToConfig(form) };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, issues: [...err.issues] };
    throw err;
  }
}

/** One line on what a valid config will run: "3 stages × 2 replicas · global batch 256 · 8 micro-batches of 16". */
export function describeShape(c: RunConfig): string {
  const { replicas, stages, globalBatch } = runShape(c);
  if (c.strategy === 'data') return describeDataShape(c, replicas, globalBatch);
  const per = Math.floor(c.batch / c.microBatches);
  const even = per * c.microBatches === c.batch;
  const mb = `${c.microBatches} micro-batch${c.microBatches === 1 ? '' : 'es'} of ${even ? per : `~${per}`}`;
  const replicaText = `${replicas} replica${replicas === 1 ? '' : 's'}`;
  const chunks = c.schedule === 'interleaved' ? ` · ${c.virtualStages} chunks per peer` : '';
  const spares =
    c.spares > 0 ? ` · ${c.spares} spare${c.spares === 1 ? '' : 's'} (a lost stage's layers go to one)` : '';
  const shape = `${stages} stage${stages === 1 ? '' : 's'} × ${replicaText}${chunks}${spares} · global batch ${globalBatch} · ${mb}`;
  return c.targetAccuracy === undefined ? shape : `${shape} · ${stopsAt(c.targetAccuracy)}`;
}

function stopsAt(target: number): string {
  return `stops at ${(target * 100).toFixed(1)}% accuracy`;
}

function describeDataShape(c: RunConfig, workers: number, globalBatch: number): string {
  const servers = c.psShards === 1 ? 'one also serves parameters' : `${c.psShards} also serve parameters`;
  const what: Record<RunConfig['sync'], string> = {
    allreduce: 'workers',
    ps: `workers, ${servers}`,
    diloco: `workers averaging every ${c.innerSteps} step${c.innerSteps === 1 ? '' : 's'}`,
    'ps-async': `workers, ${servers}, at most ${c.staleness} version${c.staleness === 1 ? '' : 's'} stale`,
  };
  const extra = [
    c.compress !== 'none' ? `compressed ${c.compress}` : '',
    c.elastic ? `elastic: ${elasticCost(c.sync)}` : '',
    c.targetAccuracy !== undefined ? stopsAt(c.targetAccuracy) : '',
  ].filter((x) => x !== '');
  return [`${workers} ${what[c.sync]}`, `global batch ${globalBatch}`, ...extra].join(' · ');
}

/** The default shown in the micro-batches field when it is blank. */
export function defaultMicroBatches(schedule: ScheduleKind): number {
  return schedule === 'naive' ? 1 : DEFAULT_MICRO_BATCHES;
}

/**
 * Layer names of a model preset as the workers' profiles name them ("0.dense", "1.relu"), so the plan
 * editor can draw the strip before any preview. Pure: the presets are data in protocol, no engine.
 */
export function presetLayerNames(model: RunConfig['model']): string[] {
  return modelPreset(model).layers.map((l, i) => `${i}.${l.kind}`);
}
