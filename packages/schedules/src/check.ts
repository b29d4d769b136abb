// Structural checks of a schedule, independent of how it was built: every forward and backward of every
// (stage, micro-batch) exactly once and in order, each wrapped by the right sends and receives, sends and
// receives matched one to one across stages, one optimizer step after the last backward. Deadlock
// freedom is what `simulate` checks.

import type { Op, StageOps } from './ops.ts';
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

type Slot = 'forward' | 'backward' | 'sendAct' | 'recvAct' | 'sendGrad' | 'recvGrad';
const SLOTS: readonly Slot[] = ['forward', 'backward', 'sendAct', 'recvAct', 'sendGrad', 'recvGrad'];

/** The neighbour a comm op must name on stage s: activations flow up the stages, gradients down. */
function expectedPeer(op: Op, stage: number): number | null {
  switch (op.kind) {
    case 'sendAct':
    case 'recvGrad':
      return stage + 1;
    case 'recvAct':
    case 'sendGrad':
      return stage - 1;
    default:
      return null;
  }
}

/** The neighbour a comm op actually names. */
function namedPeer(op: Op): number | null {
  switch (op.kind) {
    case 'sendAct':
    case 'sendGrad':
      return op.to;
    case 'recvAct':
    case 'recvGrad':
      return op.from;
    default:
      return null;
  }
}

/** Every rule the schedule breaks, as text; empty when it is well formed for P stages and M micro-batches. */
export function scheduleIssues(ops: readonly StageOps[], stages: number, microBatches: number): string[] {
  const issues: string[] = [];
  const add = (s: string): void => {
    issues.push(s);
  };
  if (ops.length !== stages) add(`expected ${stages} stage lists, got ${ops.length}`);
  // +1 per send, -1 per receive, by message; every entry must end at 0.
  const balance = new Map<string, number>();

  ops.forEach((list, stage) => {
    const first = stage === 0;
    const last = stage === stages - 1;
    // positions[slot][mb] = indices in this stage's list where that op appears.
    const positions = new Map<Slot, number[][]>(
      SLOTS.map((slot) => [slot, Array.from({ length: microBatches }, () => [])]),
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
      const expected = expectedPeer(op, stage);
      const named = namedPeer(op);
      if (expected !== null && (named !== expected || expected < 0 || expected >= stages)) {
        add(
          `${where}: names stage ${named}, expected ${expected < 0 || expected >= stages ? 'none' : expected}`,
        );
      }
      const key = messageKey(op, stage);
      if (key !== null) {
        const delta = op.kind === 'sendAct' || op.kind === 'sendGrad' ? 1 : -1;
        balance.set(key, (balance.get(key) ?? 0) + delta);
      }
      positions.get(op.kind)?.[op.mb]?.push(index);
    });

    const at = (slot: Slot, mb: number): number[] => positions.get(slot)?.[mb] ?? [];
    const once = (slot: Slot, mb: number, wanted: boolean): number | null => {
      const found = at(slot, mb);
      const expected = wanted ? 1 : 0;
      if (found.length !== expected)
        add(`stage ${stage} mb ${mb}: ${slot} appears ${found.length} times, expected ${expected}`);
      return found.length === 1 ? (found[0] ?? null) : null;
    };
    const before = (a: number | null, b: number | null, what: string): void => {
      if (a !== null && b !== null && a >= b) add(`stage ${stage}: ${what} (ops ${a} and ${b})`);
    };
    let lastBackward = -1;
    for (let mb = 0; mb < microBatches; mb++) {
      const f = once('forward', mb, true);
      const b = once('backward', mb, true);
      const ra = once('recvAct', mb, !first);
      const sa = once('sendAct', mb, !last);
      const rg = once('recvGrad', mb, !last);
      const sg = once('sendGrad', mb, !first);
      before(f, b, `backward of mb ${mb} before its forward`);
      before(ra, f, `forward of mb ${mb} before its activations arrive`);
      before(f, sa, `activations of mb ${mb} sent before its forward`);
      before(rg, b, `backward of mb ${mb} before its gradient arrives`);
      before(b, sg, `gradient of mb ${mb} sent before its backward`);
      if (b !== null) lastBackward = Math.max(lastBackward, b);
    }
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
export function assertSchedule(ops: readonly StageOps[], stages: number, microBatches: number): void {
  const issues = scheduleIssues(ops, stages, microBatches);
  if (issues.length > 0)
    throw new ScheduleError(`invalid schedule for P=${stages}, M=${microBatches}`, issues);
}
