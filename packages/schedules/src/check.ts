// Structural checks of a schedule, independent of how it was built: for every (chunk, micro-batch) on
// every stage, one forward and one backward (or one split backward: input part, then weight part), in
// order, each wrapped by the right sends and receives; sends and receives matched one to one across
// stages; one optimizer step after the last backward. Chunk k of stage s is virtual stage k * P + s (see
// ops.ts). Deadlock freedom is what `simulate` checks.

import type { AnyOp, AnyOpKind, AnyStageOps } from './ops.ts';
import { messageKey } from './ops.ts';

/** A schedule broke a structural rule. `issues` lists what was found (at most MAX_ISSUES of them). */
export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
  constructor(
    message: string,
    readonly issues: readonly string[],
  ) {
    super(`${message}: ${issues.join('; ')}`);
  }
}

const MAX_ISSUES = 20;

type Slot = Exclude<AnyOpKind, 'optimizer'>;
const SLOTS: readonly Slot[] = [
  'forward',
  'backward',
  'backwardInput',
  'backwardWeight',
  'sendAct',
  'recvAct',
  'sendGrad',
  'recvGrad',
];

/** Pipeline shape: P devices, V chunks each. */
interface Shape {
  readonly stages: number;
  readonly virtualStages: number;
}

/** The device a comm op on virtual stage v must name: activations flow up the virtual stages, gradients down; null past the ends. */
function expectedPeer(kind: AnyOpKind, v: number, { stages, virtualStages }: Shape): number | null {
  const up = kind === 'sendAct' || kind === 'recvGrad';
  const peer = up ? v + 1 : v - 1;
  return peer < 0 || peer >= stages * virtualStages ? null : peer % stages;
}

/** The device a comm op names, or undefined for a compute op. */
function namedPeer(op: AnyOp): number | undefined {
  switch (op.kind) {
    case 'sendAct':
    case 'sendGrad':
      return op.to;
    case 'recvAct':
    case 'recvGrad':
      return op.from;
    default:
      return undefined;
  }
}

/** Indices in one stage's list where each (slot, chunk, micro-batch) appears; optimizer indices apart. */
interface Positions {
  readonly at: (slot: Slot, chunk: number, mb: number) => number[];
  readonly optimizerAt: number[];
}

/** Records where each op of `list` sits, adding range, peer and message-balance issues on the way. */
function locate(
  list: AnyStageOps,
  stage: number,
  shape: Shape,
  microBatches: number,
  balance: Map<string, number>,
  add: (issue: string) => void,
): Positions {
  // found[slot][chunk * M + mb] = indices in this stage's list where that op appears.
  const found = new Map<Slot, number[][]>(
    SLOTS.map((slot) => [slot, Array.from({ length: shape.virtualStages * microBatches }, () => [])]),
  );
  const optimizerAt: number[] = [];
  list.forEach((op, index) => {
    const where = `stage ${stage} op ${index} (${op.kind})`;
    if (op.kind === 'optimizer') {
      optimizerAt.push(index);
      return;
    }
    if (!Number.isInteger(op.mb) || op.mb < 0 || op.mb >= microBatches) {
      add(`${where}: micro-batch ${op.mb} out of [0, ${microBatches})`);
      return;
    }
    const chunk = op.chunk ?? 0;
    if (!Number.isInteger(chunk) || chunk < 0 || chunk >= shape.virtualStages) {
      add(`${where}: chunk ${chunk} out of [0, ${shape.virtualStages})`);
      return;
    }
    const named = namedPeer(op);
    if (named !== undefined) {
      const expected = expectedPeer(op.kind, chunk * shape.stages + stage, shape);
      if (named !== expected) add(`${where}: names stage ${named}, expected ${expected ?? 'none'}`);
    }
    const key = messageKey(op, stage);
    if (key !== null) {
      const delta = op.kind === 'sendAct' || op.kind === 'sendGrad' ? 1 : -1;
      balance.set(key, (balance.get(key) ?? 0) + delta);
    }
    found.get(op.kind)?.[chunk * microBatches + op.mb]?.push(index);
  });
  return {
    at: (slot, chunk, mb) => found.get(slot)?.[chunk * microBatches + mb] ?? [],
    optimizerAt,
  };
}

/** Checks the ops of one (chunk, micro-batch) on one stage; returns the index of its last backward op. */
function checkUnit(
  pos: Positions,
  stage: number,
  chunk: number,
  mb: number,
  shape: Shape,
  add: (issue: string) => void,
): number {
  const v = chunk * shape.stages + stage;
  const first = v === 0;
  const last = v === shape.stages * shape.virtualStages - 1;
  const unit = shape.virtualStages > 1 ? `chunk ${chunk} mb ${mb}` : `mb ${mb}`;
  const count = (slot: Slot): number => pos.at(slot, chunk, mb).length;
  const once = (slot: Slot, wanted: boolean): number | null => {
    const found = pos.at(slot, chunk, mb);
    const expected = wanted ? 1 : 0;
    if (found.length !== expected)
      add(`stage ${stage} ${unit}: ${slot} appears ${found.length} times, expected ${expected}`);
    return found.length === 1 ? (found[0] ?? null) : null;
  };
  const before = (a: number | null, b: number | null, what: string): void => {
    if (a !== null && b !== null && a >= b) add(`stage ${stage}: ${what} (ops ${a} and ${b})`);
  };
  // A backward is whole, or split into its input part and weight part: whichever form appears.
  const split = count('backwardInput') + count('backwardWeight') > 0 && count('backward') === 0;
  const f = once('forward', true);
  const b = once(split ? 'backwardInput' : 'backward', true);
  const w = once('backwardWeight', split);
  if (!split) once('backwardInput', false);
  const ra = once('recvAct', !first);
  const sa = once('sendAct', !last);
  const rg = once('recvGrad', !last);
  const sg = once('sendGrad', !first);
  before(f, b, `backward of ${unit} before its forward`);
  before(b, w, `weight gradient of ${unit} before its input gradient`);
  before(ra, f, `forward of ${unit} before its activations arrive`);
  before(f, sa, `activations of ${unit} sent before its forward`);
  before(rg, b, `backward of ${unit} before its gradient arrives`);
  before(b, sg, `gradient of ${unit} sent before its backward`);
  return Math.max(b ?? -1, w ?? -1);
}

/**
 * Every rule the schedule breaks, as text; empty when it is well formed for P stages, M micro-batches
 * and V chunks per stage (default 1).
 */
export function scheduleIssues(
  ops: readonly AnyStageOps[],
  stages: number,
  microBatches: number,
  virtualStages = 1,
): string[] {
  const issues: string[] = [];
  const add = (s: string): void => {
    issues.push(s);
  };
  const shape: Shape = { stages, virtualStages };
  if (ops.length !== stages) add(`expected ${stages} stage lists, got ${ops.length}`);
  // +1 per send, -1 per receive, by message; every entry must end at 0.
  const balance = new Map<string, number>();

  ops.forEach((list, stage) => {
    const pos = locate(list, stage, shape, microBatches, balance, add);
    let lastBackward = -1;
    for (let chunk = 0; chunk < virtualStages; chunk++) {
      for (let mb = 0; mb < microBatches; mb++)
        lastBackward = Math.max(lastBackward, checkUnit(pos, stage, chunk, mb, shape, add));
    }
    const { optimizerAt } = pos;
    if (optimizerAt.length !== 1)
      add(`stage ${stage}: optimizer appears ${optimizerAt.length} times, expected 1`);
    const opt = optimizerAt[0];
    if (opt !== undefined && opt < lastBackward)
      add(`stage ${stage}: optimizer (op ${opt}) before the last backward (op ${lastBackward})`);
  });

  for (const [key, n] of balance) {
    if (n > 0) add(`${key}: ${n} send(s) never received`);
    else if (n < 0) add(`${key}: ${-n} receive(s) with no send`);
  }
  return issues.length > MAX_ISSUES
    ? [...issues.slice(0, MAX_ISSUES), `and ${issues.length - MAX_ISSUES} more`]
    : issues;
}

/** Throws ScheduleError listing the issues unless the schedule is well formed. */
export function assertSchedule(
  ops: readonly AnyStageOps[],
  stages: number,
  microBatches: number,
  virtualStages = 1,
): void {
  const issues = scheduleIssues(ops, stages, microBatches, virtualStages);
  if (issues.length > 0)
    throw new ScheduleError(
      `invalid schedule for P=${stages}, M=${microBatches}${virtualStages > 1 ? `, V=${virtualStages}` : ''}`,
      issues,
    );
}
