// The ops a pipeline stage executes, in order. A schedule is data: one list per stage (= device), no
// tensors. `mb` is the micro-batch index in [0, M).
//
// Chunks (interleaved schedules): a device may hold V model chunks; chunk k of device s is virtual stage
// v = k * P + s of V * P, so device s holds chunks s, s + P, s + 2P, ... of the model (Megatron-LM).
// Compute and comm ops name their chunk in `chunk` (local index k in [0, V)); absent means 0, which is
// every op of the non-interleaved schedules (V = 1: virtual stage = stage). Activations flow from virtual
// stage v to v + 1, gradients from v + 1 to v: device s sends activations to s + 1, except that the last
// device's chunk k sends to device 0's chunk k + 1.
//
// Split backward (zero-bubble schedules): `backward` computes both gradients of a micro-batch at once;
// a schedule may instead run `backwardInput` (the gradient of the stage's input, which the previous stage
// waits for) and later `backwardWeight` (the gradient of the stage's weights, which nobody waits for).

/** The schedules whose op lists hold executor ops only (no chunks, no split backward). */
export const SCHEDULE_NAMES = ['naive', 'gpipe', '1f1b'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];
/**
 * Every schedule this package builds, checks and simulates: SCHEDULE_NAMES plus `interleaved`
 * (Megatron-LM interleaved 1F1B, V chunks per device) and `zb-h1` (zero bubble, Qi et al. 2023), whose op
 * lists need an executor that runs chunks and split backward (the protocol's config takes all five).
 */
export const ALL_SCHEDULE_NAMES = [...SCHEDULE_NAMES, 'interleaved', 'zb-h1'] as const;
export type AnyScheduleName = (typeof ALL_SCHEDULE_NAMES)[number];

export interface ForwardOp {
  readonly kind: 'forward';
  readonly mb: number;
  /** Local chunk index in [0, V); absent = 0. */
  readonly chunk?: number;
}
/** Both gradients of `mb` (input and weights); frees its activations. */
export interface BackwardOp {
  readonly kind: 'backward';
  readonly mb: number;
  readonly chunk?: number;
}
/** Send the output activations of `mb` (of this op's chunk) to device `to` (the next virtual stage). */
export interface SendActOp {
  readonly kind: 'sendAct';
  readonly mb: number;
  readonly to: number;
  readonly chunk?: number;
}
/** Receive the input activations of `mb` (of this op's chunk) from device `from` (the previous virtual stage). */
export interface RecvActOp {
  readonly kind: 'recvAct';
  readonly mb: number;
  readonly from: number;
  readonly chunk?: number;
}
/** Send the gradient of this chunk's input activations of `mb` to device `to` (the previous virtual stage). */
export interface SendGradOp {
  readonly kind: 'sendGrad';
  readonly mb: number;
  readonly to: number;
  readonly chunk?: number;
}
/** Receive the gradient of this chunk's output activations of `mb` from device `from` (the next virtual stage). */
export interface RecvGradOp {
  readonly kind: 'recvGrad';
  readonly mb: number;
  readonly from: number;
  readonly chunk?: number;
}
/** Apply the accumulated gradients (the pipeline flush at the end of a step). */
export interface OptimizerOp {
  readonly kind: 'optimizer';
}
/** Split backward, part 1 ("B"): the gradient of the chunk's input only; sendGrad follows it. */
export interface BackwardInputOp {
  readonly kind: 'backwardInput';
  readonly mb: number;
  readonly chunk?: number;
}
/** Split backward, part 2 ("W"): the gradient of the chunk's weights; frees the activations of `mb`. */
export interface BackwardWeightOp {
  readonly kind: 'backwardWeight';
  readonly mb: number;
  readonly chunk?: number;
}

/** The ops the worker executor runs today. */
export type Op = ForwardOp | BackwardOp | SendActOp | RecvActOp | SendGradOp | RecvGradOp | OptimizerOp;
export type OpKind = Op['kind'];
/** Every op a schedule may hold: Op plus the split backward. */
export type AnyOp = Op | BackwardInputOp | BackwardWeightOp;
export type AnyOpKind = AnyOp['kind'];
export type SendOp = SendActOp | SendGradOp;
export type RecvOp = RecvActOp | RecvGradOp;
/** The ops of one stage, executed in order (executor ops only). */
export type StageOps = readonly Op[];
/** The ops of one stage, executed in order; may hold split backward ops. */
export type AnyStageOps = readonly AnyOp[];

export function isSchedule(name: unknown): name is ScheduleName {
  return typeof name === 'string' && (SCHEDULE_NAMES as readonly string[]).includes(name);
}

export function isAnySchedule(name: unknown): name is AnyScheduleName {
  return typeof name === 'string' && (ALL_SCHEDULE_NAMES as readonly string[]).includes(name);
}

/** Micro-batch of an op, or null for the optimizer. */
export function opMicroBatch(op: AnyOp): number | null {
  return op.kind === 'optimizer' ? null : op.mb;
}

/** Chunk of an op (0 when absent), or null for the optimizer. */
export function opChunk(op: AnyOp): number | null {
  return op.kind === 'optimizer' ? null : (op.chunk ?? 0);
}

const MARKS: Record<Exclude<AnyOpKind, 'optimizer'>, string> = {
  forward: 'F',
  backward: 'B',
  backwardInput: 'I',
  backwardWeight: 'W',
  sendAct: '>a',
  recvAct: '<a',
  sendGrad: '>g',
  recvGrad: '<g',
};

/**
 * Compact text of a stage's ops, for tests and logs: `F0` forward, `B0` backward, `I0` input-gradient
 * part and `W0` weight-gradient part of a split backward, `U` optimizer; with `comm`, also `>a0` sendAct,
 * `<a0` recvAct, `>g0` sendGrad, `<g0` recvGrad. An op that names a chunk prints it: `F3c1` = mb 3 of
 * chunk 1.
 */
export function formatOps(ops: AnyStageOps, { comm = false }: { comm?: boolean } = {}): string {
  const parts: string[] = [];
  for (const op of ops) {
    if (op.kind === 'optimizer') {
      parts.push('U');
      continue;
    }
    const isComm =
      op.kind === 'sendAct' || op.kind === 'recvAct' || op.kind === 'sendGrad' || op.kind === 'recvGrad';
    if (isComm && !comm) continue;
    parts.push(`${MARKS[op.kind]}${op.mb}${op.chunk === undefined ? '' : `c${op.chunk}`}`);
  }
  return parts.join(' ');
}

/** Chunk of the peer a comm op on device `self` talks to: the nearest virtual stage on that device. */
function peerChunk(op: SendOp | RecvOp, self: number): number {
  const chunk = op.chunk ?? 0;
  // Activations sent and gradients received travel to/from the next virtual stage, which is on a
  // higher device in the same chunk, or (wrapping past the last device) on a lower one in the next chunk.
  const up = op.kind === 'sendAct' || op.kind === 'recvGrad';
  const peer = op.kind === 'sendAct' || op.kind === 'sendGrad' ? op.to : op.from;
  if (up) return peer > self ? chunk : chunk + 1;
  return peer < self ? chunk : chunk - 1;
}

/**
 * Identity of the message a comm op on device `self` sends or receives (channel, sender, receiver,
 * micro-batch): a send and its receive share it. Sender and receiver are devices (`act 1->2 mb 3`) when
 * both are chunk 0, else device:chunk pairs (`act 3:0->0:1 mb 3`). Null for compute ops.
 */
export function messageKey(op: AnyOp, self: number): string | null {
  if (op.kind !== 'sendAct' && op.kind !== 'recvAct' && op.kind !== 'sendGrad' && op.kind !== 'recvGrad')
    return null;
  const send = op.kind === 'sendAct' || op.kind === 'sendGrad';
  const chunk = op.chunk ?? 0;
  const other = peerChunk(op, self);
  const peer = send ? op.to : op.from;
  const plain = chunk === 0 && other === 0;
  const me = plain ? `${self}` : `${self}:${chunk}`;
  const them = plain ? `${peer}` : `${peer}:${other}`;
  const channel = op.kind === 'sendAct' || op.kind === 'recvAct' ? 'act' : 'grad';
  return send ? `${channel} ${me}->${them} mb ${op.mb}` : `${channel} ${them}->${me} mb ${op.mb}`;
}

/**
 * Activations held on a stage after each op, at most, in (chunk, micro-batch) units: a forward stores
 * its micro-batch's activations for its chunk; the backward, or the weight-gradient part of a split
 * backward (which still needs the layer inputs), frees them. Peak over the list (0 for an empty list).
 */
export function peakInFlight(ops: AnyStageOps): number {
  let held = 0;
  let peak = 0;
  for (const op of ops) {
    if (op.kind === 'forward') peak = Math.max(peak, ++held);
    else if (op.kind === 'backward' || op.kind === 'backwardWeight') held--;
  }
  return peak;
}
