// One pipeline step on one stage: walk the schedule's op list (packages/schedules), moving
// activations forward and their gradients backward over the mesh, and record a span for each op.
//
// Wire keys: activations of micro-batch mb travel as { runId, step, microBatch: mb, tag: ACT_TAG },
// their gradients as { ..., tag: GRAD_TAG }; a stage's parameters gathered for evaluation as
// { runId, step, microBatch: null, tag: PARAM_TAG_BASE + stage } (the all-reduce of a hybrid's stage
// group uses microBatch null and tags from 0, on other links).
import { ProtocolError } from '@peertrain/protocol';
import type { StageOps } from '@peertrain/schedules';
import type { SpanKind } from '@peertrain/protocol';
import type { SpanMeta, SpanRecorder } from '@peertrain/telemetry';
import type { Mesh, TensorKey } from '@peertrain/transport';
import type { StageSession, StageStepOutcome } from './compute.ts';

/** The schedule and the stage disagree (a runtime bug, or ops that do not fit this stage). */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
}

export const ACT_TAG = 1;
export const GRAD_TAG = 2;
export const PARAM_TAG_BASE = 1 << 20;

export interface PipelineStepContext {
  mesh: Mesh;
  runId: number;
  step: number;
  ops: StageOps;
  stage: StageSession;
  /** Peer ids of the previous and next stage of this replica (null at the ends). */
  prev: string | null;
  next: string | null;
  params: Float32Array;
  /** Receives the step's gradient sum. */
  grads: Float32Array;
  /** Every op's span goes here (its clock is the step's clock). */
  spans: SpanRecorder;
  signal: AbortSignal;
  /** Runs the optimizer op (hybrid: the stage group's all-reduce first); its spans are the caller's. */
  optimizer: () => Promise<void>;
  /** Micro-batches whose forward activations the stage holds now (after each forward and backward). */
  onHeld?: (count: number) => void;
}

export function f32View(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 !== 0 || bytes.byteLength % 4 !== 0) {
    return new Float32Array(bytes.slice().buffer);
  }
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function asBytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Runs the step's ops in order; resolves when every op (and every send) is done. */
export async function runPipelineStep(ctx: PipelineStepContext): Promise<StageStepOutcome> {
  const { mesh, runId, step, stage, signal, spans } = ctx;
  const now = (): number => spans.now();
  const key = (mb: number, tag: number): TensorKey => ({ runId, step, microBatch: mb, tag });
  const received = new Map<number, Float32Array>();
  let held = 0;
  const produced = new Map<number, Float32Array>();
  const sends: Promise<void>[] = [];
  let outcome: StageStepOutcome | null = null;

  const span = (kind: SpanKind, t0: number, extra: Omit<SpanMeta, 'step'> = {}): void => {
    spans.record(kind, t0, now() - t0, { step, ...extra });
  };

  const recv = async (from: string | null, mb: number, tag: number): Promise<void> => {
    if (!from) throw new PipelineError(`stage ${stage.first}-${stage.end} has no neighbour to receive from`);
    const t0 = now();
    const msg = await mesh.recvTensor(from, key(mb, tag), { signal });
    if (msg.dtype !== 'float32')
      throw new ProtocolError('bad-message', `expected float32 activations, got ${msg.dtype}`);
    received.set(mb, f32View(msg.data));
    span('recv', t0, { microBatch: mb, bytes: msg.data.byteLength, peer: from });
  };

  const send = (to: string | null, mb: number, tag: number): void => {
    if (!to) throw new PipelineError(`stage ${stage.first}-${stage.end} has no neighbour to send to`);
    const data = produced.get(mb);
    if (!data) throw new PipelineError(`micro-batch ${mb}: nothing to send`);
    produced.delete(mb);
    const t0 = now();
    const bytes = data.byteLength;
    // Not awaited here: the next op computes while the link drains; all sends are awaited at the end.
    const p = mesh
      .sendTensor(
        to,
        { ...key(mb, tag), dtype: 'float32', shape: [data.length], data: asBytes(data) },
        { signal },
      )
      .then(() => span('send', t0, { microBatch: mb, bytes, peer: to }));
    p.catch(() => {}); // observed below; avoid an unhandled rejection while later ops run
    sends.push(p);
  };

  await stage.beginStep(step, ctx.params, { signal });
  try {
    for (const op of ctx.ops) {
      signal.throwIfAborted();
      switch (op.kind) {
        case 'recvAct':
          await recv(ctx.prev, op.mb, ACT_TAG);
          break;
        case 'recvGrad':
          await recv(ctx.next, op.mb, GRAD_TAG);
          break;
        case 'forward':
        case 'backward': {
          // Forward takes the previous stage's activations, backward the next stage's gradients (dy).
          const t0 = now();
          const input = received.get(op.mb) ?? null;
          received.delete(op.mb);
          const fwd = op.kind === 'forward';
          const out = await (fwd ? stage.forward(op.mb, input) : stage.backward(op.mb, input));
          if (out) produced.set(op.mb, out);
          span(op.kind, t0, { microBatch: op.mb });
          ctx.onHeld?.(fwd ? ++held : --held);
          break;
        }
        case 'sendAct':
          send(ctx.next, op.mb, ACT_TAG);
          break;
        case 'sendGrad':
          send(ctx.prev, op.mb, GRAD_TAG);
          break;
        case 'optimizer': {
          const t0 = now();
          outcome = await stage.endStep(ctx.grads);
          span('compute', t0);
          await ctx.optimizer();
          break;
        }
        default: {
          const unknown: never = op;
          throw new PipelineError(`unknown op ${JSON.stringify(unknown)}`);
        }
      }
    }
    const t0 = now();
    await Promise.all(sends);
    if (now() - t0 > 0.05) span('wait', t0);
  } catch (e) {
    stage.reset();
    await Promise.allSettled(sends);
    throw e;
  }
  if (!outcome) throw new PipelineError('the schedule has no optimizer op');
  return outcome;
}
