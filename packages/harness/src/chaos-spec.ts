import { mulberry32 } from '@peertrain/base';
import { ChaosSpecError } from './errors.ts';

/*
 * `--chaos SPEC`: what goes wrong during a run, drawn from a seed so that a run can be repeated.
 *
 *   SPEC   = PART ("," PART)*            each key at most once, at least one of kill/freeze/slow/hide
 *   PART   = "kill=" N                   N worker tabs closed without a goodbye (the vanish path)
 *          | "freeze=" N ":" DURATION    N times a worker tab frozen (CDP Page.setWebLifecycleState
 *                                        frozen), thawed (active) after DURATION
 *          | "slow=" N ":" F "x" [":" DURATION]
 *                                        N times a worker's CPU throttled F times (CDP
 *                                        Emulation.setCPUThrottlingRate) for DURATION, else to the end
 *          | "hide=" N                   the last N worker tabs opened are hidden (background) for the
 *                                        whole run: visibilityState 'hidden', Chrome's background
 *                                        throttling on (hidden-tab.ts); their visibility is recorded
 *                                        at the middle step. Not drawn: no seed, no step window
 *          | "seed=" S                   the schedule's seed (default: the run's --seed)
 *          | "steps=" A "-" B            steps the actions are drawn from (default 1 to steps-2)
 *   N      = integer 0..64;  F = number, 1 < F <= 20;  DURATION = <n>ms | <n>s, 100 ms .. 600 s
 *
 * An action at step k fires once the coordinator reports k steps done. Targets are original ranks
 * 1..N-1: rank 0 evaluates, trains the reference and hands back the model, so it is never touched.
 * Kills take distinct ranks; freezes and slowdowns take ranks no kill takes, so they hit a live tab.
 */

export interface ChaosSpec {
  kill: number;
  freeze: { count: number; durationMs: number } | null;
  slow: { count: number; factor: number; durationMs: number | null } | null;
  /** Worker tabs hidden for the whole run (the last ones opened); 0: none. */
  hide: number;
  /** null: the run's seed. */
  seed: number | null;
  /** Inclusive step window the actions are drawn from; null: 1 .. steps-2. */
  steps: { from: number; to: number } | null;
}

export type ChaosAction =
  | { kind: 'kill'; step: number; rank: number }
  | { kind: 'freeze'; step: number; rank: number; durationMs: number }
  | { kind: 'slow'; step: number; rank: number; factor: number; durationMs: number | null };

export const CHAOS_SPEC_RULE =
  'kill=N, freeze=N:DURATION, slow=N:Fx[:DURATION], hide=N, seed=S, steps=A-B (comma-separated, each once), e.g. kill=1,freeze=1:15s,slow=1:3x,seed=7';

const MAX_COUNT = 64;
const MAX_FACTOR = 20;
const MIN_DURATION_MS = 100;
const MAX_DURATION_MS = 600_000;
const KEYS = ['kill', 'freeze', 'slow', 'hide', 'seed', 'steps'] as const;
type Key = (typeof KEYS)[number];

function parseCount(key: string, raw: string, issues: string[]): number | undefined {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= MAX_COUNT)) {
    issues.push(`${key}: count ${JSON.stringify(raw)} is not an integer 0..${MAX_COUNT}`);
    return undefined;
  }
  return n;
}

function parseDuration(key: string, raw: string, issues: string[]): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(raw);
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(ms >= MIN_DURATION_MS && ms <= MAX_DURATION_MS)) {
    issues.push(`${key}: duration ${JSON.stringify(raw)} is not 100ms..600s, e.g. 15s or 500ms`);
    return undefined;
  }
  return Math.round(ms);
}

function parseFactor(raw: string, issues: string[]): number | undefined {
  const m = /^(\d+(?:\.\d+)?)x$/.exec(raw);
  const f = m ? Number(m[1]) : NaN;
  if (!(f > 1 && f <= MAX_FACTOR)) {
    issues.push(`slow: factor ${JSON.stringify(raw)} is not 1 < F <= ${MAX_FACTOR} followed by x, e.g. 3x`);
    return undefined;
  }
  return f;
}

function parseFreeze(value: string, issues: string[]): ChaosSpec['freeze'] | undefined {
  const parts = value.split(':');
  if (parts.length !== 2) {
    issues.push(`freeze=${value}: expected freeze=N:DURATION, e.g. freeze=1:15s`);
    return undefined;
  }
  const count = parseCount('freeze', parts[0]!, issues);
  const durationMs = parseDuration('freeze', parts[1]!, issues);
  return count === undefined || durationMs === undefined ? undefined : { count, durationMs };
}

function parseSlow(value: string, issues: string[]): ChaosSpec['slow'] | undefined {
  const parts = value.split(':');
  if (parts.length !== 2 && parts.length !== 3) {
    issues.push(`slow=${value}: expected slow=N:Fx or slow=N:Fx:DURATION, e.g. slow=1:3x`);
    return undefined;
  }
  const count = parseCount('slow', parts[0]!, issues);
  const factor = parseFactor(parts[1]!, issues);
  const durationMs = parts[2] === undefined ? null : parseDuration('slow', parts[2], issues);
  if (count === undefined || factor === undefined || durationMs === undefined) return undefined;
  return { count, factor, durationMs };
}

function parseSeed(value: string, issues: string[]): number | undefined {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 0xffffffff)) {
    issues.push(`seed=${value}: expected an integer 0..4294967295`);
    return undefined;
  }
  return n;
}

function parseWindow(value: string, issues: string[]): ChaosSpec['steps'] | undefined {
  const m = /^(\d+)-(\d+)$/.exec(value);
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2]) : NaN;
  if (!(from >= 1 && to >= from)) {
    issues.push(`steps=${value}: expected A-B with 1 <= A <= B, e.g. steps=5-50`);
    return undefined;
  }
  return { from, to };
}

/** Each key's reader: the value, or undefined after adding to `issues`. */
const READERS: { [K in Key]: (value: string, issues: string[]) => ChaosSpec[K] | undefined } = {
  kill: (value, issues) => parseCount('kill', value, issues),
  freeze: parseFreeze,
  slow: parseSlow,
  hide: (value, issues) => parseCount('hide', value, issues),
  seed: parseSeed,
  steps: parseWindow,
};

/** One KEY=VALUE part into `spec`; a bad value adds to `issues` and leaves `spec` as it was. */
function parsePart<K extends Key>(spec: ChaosSpec, key: K, value: string, issues: string[]): void {
  const read = READERS[key](value, issues);
  if (read !== undefined) spec[key] = read;
}

/**
 * `kill=1,freeze=1:15s,slow=1:3x,seed=7` -> ChaosSpec. Strict: unknown keys, repeated keys, bad
 * values and a spec that does nothing are refused. Throws ChaosSpecError listing every problem.
 */
export function parseChaosSpec(text: string): ChaosSpec {
  const spec: ChaosSpec = { kill: 0, freeze: null, slow: null, hide: 0, seed: null, steps: null };
  const issues: string[] = [];
  const seen = new Set<string>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (eq < 0 || value === '') issues.push(`${JSON.stringify(part)}: expected KEY=VALUE`);
    else if (!(KEYS as readonly string[]).includes(key))
      issues.push(`${JSON.stringify(key)}: unknown key (expected ${KEYS.join(', ')})`);
    else if (seen.has(key)) issues.push(`${key}: given twice`);
    else {
      seen.add(key);
      parsePart(spec, key as Key, value, issues);
    }
  }
  if (issues.length === 0 && chaosActionCount(spec) + spec.hide === 0)
    issues.push('nothing to do: give kill=N, freeze=N:DURATION, slow=N:Fx or hide=N with N >= 1');
  if (issues.length > 0) throw new ChaosSpecError(text, issues);
  return spec;
}

function chaosActionCount(spec: ChaosSpec): number {
  return spec.kill + (spec.freeze?.count ?? 0) + (spec.slow?.count ?? 0);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** ChaosSpec -> its canonical text (what parseChaosSpec reads back to the same spec). */
export function formatChaosSpec(spec: ChaosSpec): string {
  const parts: string[] = [];
  if (spec.kill > 0) parts.push(`kill=${spec.kill}`);
  if (spec.freeze) parts.push(`freeze=${spec.freeze.count}:${formatMs(spec.freeze.durationMs)}`);
  if (spec.slow) {
    const d = spec.slow.durationMs === null ? '' : `:${formatMs(spec.slow.durationMs)}`;
    parts.push(`slow=${spec.slow.count}:${spec.slow.factor}x${d}`);
  }
  if (spec.hide > 0) parts.push(`hide=${spec.hide}`);
  if (spec.seed !== null) parts.push(`seed=${spec.seed}`);
  if (spec.steps) parts.push(`steps=${spec.steps.from}-${spec.steps.to}`);
  return parts.join(',');
}

/** Removes and returns a uniformly drawn element of `pool`. */
function take<T>(pool: T[], random: () => number): T {
  const i = Math.floor(random() * pool.length);
  return pool.splice(i, 1)[0]!;
}

/**
 * The actions of `spec` for a run of `steps` steps on `workers` workers, sorted by step (kills
 * before freezes before slowdowns on one step). Pure and seeded: the same arguments give the same
 * schedule. Draw order: each kill (rank, then step), each freeze, each slowdown. Throws
 * ChaosSpecError when the run cannot hold the spec (too many kills, an empty step window).
 */
export function chaosSchedule(
  spec: ChaosSpec,
  run: { steps: number; workers: number; seed: number },
): ChaosAction[] {
  const issues: string[] = [];
  const from = spec.steps?.from ?? 1;
  const to = spec.steps?.to ?? Math.max(1, run.steps - 2);
  if (to >= run.steps)
    issues.push(`steps=${from}-${to}: a run of ${run.steps} steps ends at step ${run.steps}`);
  const candidates = Array.from({ length: Math.max(0, run.workers - 1) }, (_, i) => i + 1);
  if (spec.kill > candidates.length)
    issues.push(`kill=${spec.kill}: ${run.workers} workers have ${candidates.length} to kill (rank 0 stays)`);
  const others = (spec.freeze?.count ?? 0) + (spec.slow?.count ?? 0);
  if (others > 0 && spec.kill >= candidates.length && issues.length === 0)
    issues.push(`kill=${spec.kill} leaves no worker of ${run.workers} to freeze or slow (rank 0 stays)`);
  if (spec.hide > run.workers) issues.push(`hide=${spec.hide}: the run has ${run.workers} workers`);
  if (issues.length > 0) throw new ChaosSpecError(formatChaosSpec(spec), issues);

  const random = mulberry32(spec.seed ?? run.seed);
  const step = (): number => from + Math.floor(random() * (to - from + 1));
  const pool = [...candidates];
  const actions: ChaosAction[] = [];
  for (let i = 0; i < spec.kill; i++) {
    const rank = take(pool, random);
    actions.push({ kind: 'kill', step: step(), rank });
  }
  const pick = (): number => pool[Math.floor(random() * pool.length)]!;
  for (let i = 0; i < (spec.freeze?.count ?? 0); i++) {
    const rank = pick();
    actions.push({ kind: 'freeze', step: step(), rank, durationMs: spec.freeze!.durationMs });
  }
  for (let i = 0; i < (spec.slow?.count ?? 0); i++) {
    const rank = pick();
    const { factor, durationMs } = spec.slow!;
    actions.push({ kind: 'slow', step: step(), rank, factor, durationMs });
  }
  const order = { kill: 0, freeze: 1, slow: 2 } as const;
  // Array.prototype.sort is stable: equal keys keep their draw order.
  return actions.sort((a, b) => a.step - b.step || order[a.kind] - order[b.kind]);
}

/** "kill rank 2 after step 17", "freeze rank 1 for 15s after step 4", "slow rank 3 3x ...". */
export function describeChaosAction(a: ChaosAction): string {
  switch (a.kind) {
    case 'kill':
      return `kill rank ${a.rank} after step ${a.step}`;
    case 'freeze':
      return `freeze rank ${a.rank} for ${formatMs(a.durationMs)} after step ${a.step}`;
    case 'slow': {
      const d = a.durationMs === null ? 'to the end' : `for ${formatMs(a.durationMs)}`;
      return `slow rank ${a.rank} ${a.factor}x ${d} after step ${a.step}`;
    }
    default: {
      const never: never = a;
      return String(never);
    }
  }
}
