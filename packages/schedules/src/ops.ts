// The ops a pipeline stage executes, in order. A schedule is data: one list per stage, no tensors.
// Stage s receives activations from s - 1 and gradients from s + 1; it sends activations to s + 1 and
// gradients to s - 1. `mb` is the micro-batch index in [0, M).

export const SCHEDULE_NAMES = ['naive', 'gpipe', '1f1b'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface ForwardOp {
  readonly kind: 'forward';
  readonly mb: number;
}
export interface BackwardOp {
  readonly kind: 'backward';
  readonly mb: number;
}
/** Send the output activations of `mb` to stage `to` (= this stage + 1). */
export interface SendActOp {
  readonly kind: 'sendAct';
  readonly mb: number;
  readonly to: number;
}
/** Receive the input activations of `mb` from stage `from` (= this stage - 1). */
export interface RecvActOp {
  readonly kind: 'recvAct';
  readonly mb: number;
  readonly from: number;
}
/** Send the gradient of this stage's input activations of `mb` to stage `to` (= this stage - 1). */
export interface SendGradOp {
  readonly kind: 'sendGrad';
  readonly mb: number;
  readonly to: number;
}
/** Receive the gradient of this stage's output activations of `mb` from stage `from` (= this stage + 1). */
export interface RecvGradOp {
  readonly kind: 'recvGrad';
  readonly mb: number;
  readonly from: number;
}
/** Apply the accumulated gradients (the pipeline flush at the end of a step). */
export interface OptimizerOp {
  readonly kind: 'optimizer';
}

export type Op = ForwardOp | BackwardOp | SendActOp | RecvActOp | SendGradOp | RecvGradOp | OptimizerOp;
export type OpKind = Op['kind'];
export type SendOp = SendActOp | SendGradOp;
export type RecvOp = RecvActOp | RecvGradOp;
/** The ops of one stage, executed in order. */
export type StageOps = readonly Op[];

export function isSchedule(name: unknown): name is ScheduleName {
  return typeof name === 'string' && (SCHEDULE_NAMES as readonly string[]).includes(name);
}

/** Micro-batch of an op, or null for the optimizer. */
export function opMicroBatch(op: Op): number | null {
  return op.kind === 'optimizer' ? null : op.mb;
}

const COMM_MARKS: Record<(SendOp | RecvOp)['kind'], string> = {
  sendAct: '>a',
  recvAct: '<a',
  sendGrad: '>g',
  recvGrad: '<g',
};

/**
 * Compact text of a stage's ops, for tests and logs: `F0` forward, `B0` backward, `U` optimizer;
 * with `comm`, also `>a0` sendAct, `<a0` recvAct, `>g0` sendGrad, `<g0` recvGrad.
 */
export function formatOps(ops: StageOps, { comm = false }: { comm?: boolean } = {}): string {
  const parts: string[] = [];
  for (const op of ops) {
    if (op.kind === 'optimizer') parts.push('U');
    else if (op.kind === 'forward') parts.push(`F${op.mb}`);
    else if (op.kind === 'backward') parts.push(`B${op.mb}`);
    else if (comm) parts.push(`${COMM_MARKS[op.kind]}${op.mb}`);
  }
  return parts.join(' ');
}

/**
 * Identity of the message a comm op on stage `self` sends or receives (channel, sender, receiver,
 * micro-batch): a send and its receive share it. Null for compute ops.
 */
export function messageKey(op: Op, self: number): string | null {
  switch (op.kind) {
    case 'sendAct':
      return `act ${self}->${op.to} mb ${op.mb}`;
    case 'recvAct':
      return `act ${op.from}->${self} mb ${op.mb}`;
    case 'sendGrad':
      return `grad ${self}->${op.to} mb ${op.mb}`;
    case 'recvGrad':
      return `grad ${op.from}->${self} mb ${op.mb}`;
    default:
      return null;
  }
}

/**
 * Activations held on a stage after each op, at most: a forward stores its micro-batch's activations,
 * the backward of that micro-batch frees them. Peak over the list (0 for an empty list).
 */
export function peakInFlight(ops: StageOps): number {
  let held = 0;
  let peak = 0;
  for (const op of ops) {
    if (op.kind === 'forward') peak = Math.max(peak, ++held);
    else if (op.kind === 'backward') held--;
  }
  return peak;
}
