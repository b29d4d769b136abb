// Discrete-event execution of op lists on an ideal machine: each stage runs its ops in order on its own
// clock; a receive waits until the matching send's message has arrived. Sends are asynchronous (the
// message is handed to the channel and arrives `comm` later, the sender goes on at once), as a data
// channel's send() is. The result is a timeline: the same figures (bubble, peak memory) the real run
// measures from telemetry spans, here from the schedule alone.

import { ConfigError } from '@peertrain/protocol';
import type { AnyOpKind, AnyStageOps, RecvOp } from './ops.ts';
import { messageKey, opChunk, opMicroBatch } from './ops.ts';

/** Durations of one stage's ops, in any time unit. `comm` is the latency of a message this stage sends. */
export interface OpCosts {
  readonly forward: number;
  readonly backward: number;
  /** Input-gradient part of a split backward; default backward / 2. */
  readonly backwardInput?: number;
  /** Weight-gradient part of a split backward; default backward / 2. */
  readonly backwardWeight?: number;
  /** Default 0: free communication. */
  readonly comm?: number;
  /** Default 0: the flush is not counted as bubble or work. */
  readonly optimizer?: number;
}

/** One op on a stage's timeline. A send is instantaneous; a receive spans the wait for its message. */
export interface Span {
  readonly kind: AnyOpKind;
  /** null for the optimizer. */
  readonly mb: number | null;
  /** The op's chunk, present only when the op names one (interleaved). */
  readonly chunk?: number;
  readonly start: number;
  readonly end: number;
}

export interface Simulation {
  /** Index = stage; spans in execution order, back to back from 0. */
  readonly spans: Span[][];
  /** When the last stage finished its last op. */
  readonly makespan: number;
  /** Index = stage; time spent computing (forward, backward or its parts, optimizer). */
  readonly busy: number[];
  /** 1 - sum(busy) / (P * makespan): waiting on messages, or done early; 0 when makespan is 0. */
  readonly idleFraction: number;
  /**
   * Index = stage; most (chunk, micro-batch) activations held at once: forward done, backward (or the
   * weight part of a split backward) not.
   */
  readonly peakInFlight: number[];
}

export interface BlockedOp {
  readonly stage: number;
  /** Index in the stage's op list. */
  readonly index: number;
  readonly op: RecvOp;
}

/** No stage can go on: every unfinished stage waits on a receive whose send never comes. */
export class ScheduleDeadlockError extends Error {
  override readonly name = 'ScheduleDeadlockError';
  constructor(readonly blocked: readonly BlockedOp[]) {
    super(
      `schedule deadlocks; blocked: ${blocked
        .map(({ stage, index, op }) => `stage ${stage} op ${index} ${op.kind} mb ${op.mb} from ${op.from}`)
        .join(', ')}`,
    );
  }
}

interface ResolvedCosts {
  forward: number;
  backward: number;
  backwardInput: number;
  backwardWeight: number;
  comm: number;
  optimizer: number;
}

function resolveCosts(cost: OpCosts | readonly OpCosts[], stages: number): ResolvedCosts[] {
  const issues: string[] = [];
  const list = Array.isArray(cost)
    ? (cost as readonly OpCosts[])
    : Array.from({ length: stages }, () => cost as OpCosts);
  if (list.length !== stages) issues.push(`expected ${stages} per-stage costs, got ${list.length}`);
  const resolved = list.map((c, stage) => {
    const r: ResolvedCosts = {
      forward: c.forward,
      backward: c.backward,
      backwardInput: c.backwardInput ?? c.backward / 2,
      backwardWeight: c.backwardWeight ?? c.backward / 2,
      comm: c.comm ?? 0,
      optimizer: c.optimizer ?? 0,
    };
    for (const [key, value] of Object.entries(r)) {
      if (!Number.isFinite(value) || value < 0)
        issues.push(`stage ${stage} ${key} cost must be finite and >= 0, got ${value}`);
    }
    return r;
  });
  if (issues.length > 0) throw new ConfigError('invalid simulation costs', issues);
  return resolved;
}

/** Compute time of op `kind` (0 for comms: a send is instantaneous, a receive only waits). */
function computeCost(kind: AnyOpKind, c: ResolvedCosts): number {
  switch (kind) {
    case 'forward':
    case 'backward':
    case 'backwardInput':
    case 'backwardWeight':
    case 'optimizer':
      return c[kind];
    default:
      return 0;
  }
}

/** Change in held activations an op makes: +1 forward, -1 when its last backward part frees them. */
function heldDelta(kind: AnyOpKind): number {
  if (kind === 'forward') return 1;
  return kind === 'backward' || kind === 'backwardWeight' ? -1 : 0;
}

/**
 * Runs the op lists (index = stage) with `cost` (one for every stage, or one per stage) and returns the
 * timeline. Throws ScheduleDeadlockError when the lists cannot all finish, ConfigError for bad costs.
 * Does not check the schedule's structure: see `assertSchedule`.
 */
export function simulate(ops: readonly AnyStageOps[], cost: OpCosts | readonly OpCosts[]): Simulation {
  const stages = ops.length;
  const costs = resolveCosts(cost, stages);
  const clock = new Array<number>(stages).fill(0);
  const pc = new Array<number>(stages).fill(0);
  const held = new Array<number>(stages).fill(0);
  const peak = new Array<number>(stages).fill(0);
  const busy = new Array<number>(stages).fill(0);
  const spans: Span[][] = ops.map(() => []);
  // Arrival times of sent, not yet received messages, FIFO per key.
  const mailbox = new Map<string, number[]>();
  let remaining = ops.reduce((n, list) => n + list.length, 0);

  // Sends never block and every time is fixed by its dependencies, so running each stage as far as
  // it can, round after round, gives the same timeline as any other order.
  while (remaining > 0) {
    let progressed = false;
    for (let s = 0; s < stages; s++) {
      const list = ops[s] ?? [];
      const c = costs[s];
      if (c === undefined) continue;
      for (let op = list[pc[s] ?? 0]; op !== undefined; op = list[pc[s] ?? 0]) {
        const start = clock[s] ?? 0;
        let end = start + computeCost(op.kind, c);
        const key = messageKey(op, s);
        if (key !== null && (op.kind === 'recvAct' || op.kind === 'recvGrad')) {
          const arrival = mailbox.get(key)?.shift();
          // No message yet: this stage waits; try the next one.
          if (arrival === undefined) break;
          end = Math.max(start, arrival);
        } else if (key !== null) {
          mailbox.set(key, [...(mailbox.get(key) ?? []), start + c.comm]);
        } else {
          busy[s] = (busy[s] ?? 0) + (end - start);
        }
        held[s] = (held[s] ?? 0) + heldDelta(op.kind);
        peak[s] = Math.max(peak[s] ?? 0, held[s] ?? 0);
        const chunk = op.kind === 'optimizer' || op.chunk === undefined ? {} : { chunk: opChunk(op) ?? 0 };
        spans[s]?.push({ kind: op.kind, mb: opMicroBatch(op), ...chunk, start, end });
        clock[s] = end;
        pc[s] = (pc[s] ?? 0) + 1;
        remaining--;
        progressed = true;
      }
    }
    if (!progressed) throw new ScheduleDeadlockError(blockedOps(ops, pc));
  }

  const makespan = Math.max(0, ...clock);
  const work = busy.reduce((a, b) => a + b, 0);
  const idleFraction = makespan > 0 && stages > 0 ? 1 - work / (stages * makespan) : 0;
  return { spans, makespan, busy, idleFraction, peakInFlight: peak };
}

function blockedOps(ops: readonly AnyStageOps[], pc: readonly number[]): BlockedOp[] {
  const blocked: BlockedOp[] = [];
  ops.forEach((list, stage) => {
    const index = pc[stage] ?? 0;
    const op = list[index];
    if (op !== undefined && (op.kind === 'recvAct' || op.kind === 'recvGrad'))
      blocked.push({ stage, index, op });
  });
  return blocked;
}
