import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';

// Part 6's plan (pure): which runs the scaling part makes and the configuration of each. The same
// model, target and GLOBAL batch trained by 1..4 tabs with every method: global 96 is 1 tab at
// batch 96, 2 at 48, 3 at 32, 4 at 24, so every row sees the same samples per step and the one-tab
// row is the baseline.

/** A way of training data-parallel: the fields it sets on top of the model's. */
export interface ScalingMethod {
  /** Stable key in the JSON ("allreduce", "diloco-20", "int8", ...). */
  id: string;
  /** What the table shows. */
  label: string;
  config: Partial<RunConfigInput>;
  /** Switches this bench's RunConfigInput type may not know yet (the overlap field, by name). */
  extra?: Record<string, boolean>;
}

/** A model and the accuracy its runs train to (evaluated every evalEvery steps). */
export interface ScalingModel {
  model: 'mlp' | 'cnn';
  target: number;
  evalEvery: number;
  /** The cap: a run that has not reached the target by then stops (and says so). */
  maxSteps: number;
}

/** Bytes per step of each compression against fp32 (same N, same steps, no target). */
export interface CompressionSettings {
  model: 'mlp' | 'cnn';
  tabs: number;
  steps: number;
  /** The first is the uncompressed reference ('none'). */
  specs: string[];
}

export interface ScalingSettings {
  quick: boolean;
  /** Samples per step over all tabs; divisible by every entry of `tabs`. */
  globalBatch: number;
  tabs: number[];
  models: ScalingModel[];
  /** Method ids (see scalingMethods); a row of the overlap method only where the config has it. */
  methods: string[];
  seed: number;
  compression: CompressionSettings | null;
  /** Only the compression runs (--scaling-compression): no time-to-target rows. */
  compressionOnly?: boolean;
  /** Only some methods' rows (--scaling-methods): no compression runs. */
  methodsOnly?: boolean;
}

/** One run of the table. */
export interface ScalingCase {
  model: ScalingModel;
  method: ScalingMethod;
  tabs: number;
  /** Per tab: globalBatch / tabs. */
  batch: number;
}

export const DILOCO_H = [5, 20, 50] as const;

/** The id of the overlapped DiLoCo row (H = 20, the outer step one round late). */
export const OVERLAPPED_DILOCO = 'diloco-20-overlap';

/** The id of the overlapped DiLoCo row whose workers fill their waits with extra inner steps. */
export const FILLED_DILOCO = 'diloco-20-fill';

/**
 * The name of the run configuration's switch for synchronous all-reduce overlapped with backward
 * (issue 10 item 3), found by parsing: a boolean field named overlap* other than diloco's
 * overlapOuter. null while the configuration has none (that row is then left out).
 */
export function overlapField(parse: (input: unknown) => object = parseRunConfig): string | null {
  const defaults = parse({}) as Record<string, unknown>;
  const key = Object.keys(defaults)
    .sort()
    .find((k) => /^overlap/i.test(k) && k !== 'overlapOuter' && typeof defaults[k] === 'boolean');
  return key ?? null;
}

/** Every method of the table, in table order; the overlap row only when `overlap` names its field. */
export function scalingMethods(overlap: string | null): ScalingMethod[] {
  const sync = { sync: 'allreduce' } as const;
  const methods: ScalingMethod[] = [{ id: 'allreduce', label: 'sync all-reduce', config: sync }];
  // Overlap with 2048-value buckets: at the default 65,536 the CNN's 9,098 gradients are one bucket,
  // which takes the plain step (nothing to overlap).
  if (overlap)
    methods.push({
      id: 'overlap',
      label: 'sync all-reduce, overlap, 2048-value buckets',
      config: { ...sync, bucketElems: 2048 },
      extra: { [overlap]: true },
    });
  for (const h of DILOCO_H)
    methods.push({ id: `diloco-${h}`, label: `diloco H=${h}`, config: { sync: 'diloco', innerSteps: h } });
  // The outer step one round late (--overlap-outer): a round's exchange runs under the next round's
  // steps. Outer momentum 0.5: with the default 0.9 the late step kept 4 MLP tabs at 86.5% after
  // 600 steps; at 0.5 they reached 0.92 at step 220 (CLI, one profile).
  methods.push({
    id: OVERLAPPED_DILOCO,
    label: 'diloco H=20, outer step overlapped, outer momentum 0.5',
    config: { sync: 'diloco', innerSteps: 20, overlapOuter: true, outerMomentum: 0.5 },
  });
  // The same, with a worker whose round ends first taking extra inner steps (at most H) while the
  // slower ones finish (--fill-waits): their waits at round ends become compute. int8: on the page's
  // thread every byte exchanged costs that thread CPU (a profile of 3 MLP tabs: a fifth of it went
  // to sending and receiving), a quarter of the bytes a quarter of that.
  methods.push({
    id: FILLED_DILOCO,
    label: 'diloco H=20, outer step overlapped, fill waits, int8, outer momentum 0.5',
    config: {
      sync: 'diloco',
      innerSteps: 20,
      overlapOuter: true,
      outerMomentum: 0.5,
      fillWaits: true,
      compress: 'int8',
    },
  });
  // Local SGD (plain averaging) with an int8 pseudo-gradient: the fastest to the MLP's target of
  // the H / outer lr / batch / compression settings tried on this machine (README).
  methods.push({
    id: 'local-10-int8',
    label: 'local SGD H=10, int8',
    config: { sync: 'diloco', innerSteps: 10, outerLr: 1, outerMomentum: 0, compress: 'int8' },
  });
  methods.push(
    { id: 'int8', label: 'int8', config: { ...sync, compress: 'int8' } },
    { id: 'topk', label: 'top-1%', config: { ...sync, compress: 'topk:0.01' } },
    { id: 'powersgd', label: 'PowerSGD r=4', config: { ...sync, compress: 'powersgd:4' } },
    { id: 'ps-async', label: 'async PS', config: { sync: 'ps-async' } },
  );
  return methods;
}

export const SCALING_MODELS: Record<'mlp' | 'cnn', ScalingModel> = {
  // Issue 10's targets; evaluations often enough to see the step, rare enough to cost little.
  mlp: { model: 'mlp', target: 0.92, evalEvery: 10, maxSteps: 600 },
  cnn: { model: 'cnn', target: 0.96, evalEvery: 25, maxSteps: 600 },
};

/**
 * Full: MLP and CNN, 1-4 tabs, every method, then fp16/int8/top-1% against fp32 at 3 tabs.
 * Quick: the MLP at 1 and 3 tabs with allreduce, diloco H=20 and int8 (capped at 300 steps), and
 * int8 against fp32 for 30 steps: a smoke check. compressionOnly: the full compression runs alone.
 */
export function scalingSettings(
  quick: boolean,
  compressionOnly = false,
  only: readonly string[] | null = null,
): ScalingSettings {
  const common = { globalBatch: 96, seed: 42 };
  const compression = {
    model: 'mlp',
    tabs: 3,
    steps: 300,
    specs: ['none', 'fp16', 'int8', 'topk:0.01'],
  } as const;
  if (compressionOnly)
    return {
      ...common,
      quick: false,
      tabs: [],
      models: [],
      methods: [],
      compression: { ...compression, specs: [...compression.specs] },
      compressionOnly: true,
    };
  if (quick) {
    return {
      ...common,
      quick: true,
      tabs: [1, 3],
      models: [{ ...SCALING_MODELS.mlp, maxSteps: 300 }],
      methods: ['allreduce', 'diloco-20', 'int8'],
      compression: { model: 'mlp', tabs: 3, steps: 30, specs: ['none', 'int8'] },
    };
  }
  const full = {
    ...common,
    quick: false,
    tabs: [1, 2, 3, 4],
    models: [SCALING_MODELS.mlp, SCALING_MODELS.cnn],
  };
  if (only) return { ...full, methods: [...only], compression: null, methodsOnly: true };
  return {
    ...full,
    methods: scalingMethods('overlap').map((m) => m.id),
    compression: { ...compression, specs: [...compression.specs] },
  };
}

/** The runs, model-major, then method, then tabs ascending (the one-tab baseline first). */
export function scalingCases(s: ScalingSettings, methods: readonly ScalingMethod[]): ScalingCase[] {
  const bad = s.tabs.filter((n) => !Number.isInteger(n) || n < 1 || s.globalBatch % n !== 0);
  if (bad.length > 0)
    throw new ConfigError('invalid scaling settings', [
      `global batch ${s.globalBatch} does not split evenly over ${bad.join(', ')} tabs`,
    ]);
  const chosen = methods.filter((m) => s.methods.includes(m.id));
  const tabs = [...s.tabs].sort((a, b) => a - b);
  return s.models.flatMap((model) =>
    chosen.flatMap((method) => tabs.map((n) => ({ model, method, tabs: n, batch: s.globalBatch / n }))),
  );
}

/** The configuration of one run: wasm, fixed seed, stops at the target (or the cap). */
export function scalingConfig(c: ScalingCase, seed: number): RunConfigInput {
  const config: RunConfigInput = {
    strategy: 'data',
    model: c.model.model,
    dataset: 'mnist',
    workers: c.tabs,
    batch: c.batch,
    steps: c.model.maxSteps,
    targetAccuracy: c.model.target,
    evalEvery: c.model.evalEvery,
    seed,
    // The fastest backend measured on this machine (PLATFORM.md); 'auto' would probe every tab.
    backend: 'wasm',
    ...c.method.config,
  };
  return Object.assign(config, c.method.extra);
}

/** A compression run: all steps, no target, evaluated only at the end. */
export function compressionConfig(s: CompressionSettings, spec: string, globalBatch: number, seed: number) {
  return {
    strategy: 'data',
    model: s.model,
    dataset: 'mnist',
    workers: s.tabs,
    batch: globalBatch / s.tabs,
    steps: s.steps,
    evalEvery: 0,
    seed,
    backend: 'wasm',
    sync: 'allreduce',
    compress: spec,
  } satisfies RunConfigInput;
}

export function caseLabel(c: ScalingCase): string {
  return `${c.model.model} ${c.method.label} N=${c.tabs} batch ${c.batch}`;
}
