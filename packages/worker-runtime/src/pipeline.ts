// One pipeline step on one stage: walk the schedule's op list (packages/schedules), moving
// activations forward and their gradients backward over the mesh, and record a span for each op.
// Two lanes: computes run in the list's order while communication runs beside them. Every receive
// of the step is posted before the first compute (its tensor is taken, and decoded, as it arrives;
// the recv op only waits for it), and a send is queued without being awaited (the mesh keeps the
// order per link); the step awaits all its sends at the end and fails with the first error.
//
// Wire keys: activations of micro-batch mb travel as { runId, step, microBatch: mb, tag: ACT_TAG },
// their gradients as { ..., tag: GRAD_TAG }; a stage's parameters gathered for evaluation as
// { runId, step, microBatch: null, tag: PARAM_TAG_BASE + stage } (the all-reduce of a hybrid's stage
// group uses microBatch null and tags from 0, on other links).
import {
  countSent,
  decode,
  encodePayload,
  encodeSparse,
  fp16Bytes,
  payloadCodec,
  sparseBytes,
} from '@peertrain/compress';
import type { PayloadCodec, PayloadCompressor } from '@peertrain/compress';
import { ProtocolError } from '@peertrain/protocol';
import type { AnyOp, AnyStageOps } from '@peertrain/schedules';
import type { SpanKind } from '@peertrain/protocol';
import type { SpanMeta, SpanRecorder } from '@peertrain/telemetry';
import type { Mesh, TensorKey } from '@peertrain/transport';
import type { StageSession, StageStepOutcome } from './compute.ts';
import { gateGradient, nonZeroMask } from './zero-gate.ts';

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
  /** The stage's op list; split backward (zb-h1) needs a stage with backwardInput / backwardWeight. */
  ops: AnyStageOps;
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
  /** Codec of the tensors this stage sends (--activation-compress); null: float32 as computed. */
  codec?: PayloadCompressor | null;
  /**
   * Zero skipping (config activationSkipZeros): a tensor whose payload is smaller as a mask and its
   * non-zero values goes that way (float32, or fp16 with the fp16 codec; never with int8), and
   * receives accept it. Default false.
   */
  skipZeros?: boolean;
  /**
   * With skipZeros: whether chunk k's input is a zero-gated output (zero-gate.ts), so that the
   * gradient sent back for it is zeroed where the input was 0 (and then skips those zeros too).
   */
  gatedInput?: (chunk: number) => boolean;
  /** false: one lane, each receive posted at its op and each send awaited there (for measurements). */
  overlap?: boolean;
  /**
   * Interleaved schedules: the peer's V chunks (chunk k = virtual stage k P + s), each with its own
   * slice of `params` and `grads`; absent, `stage` is the only chunk. prev / next are the ring's
   * neighbours (the last peer's next is the first).
   */
  chunks?: readonly StageChunk[];
  /** This peer's stage index in its replica (which chunk boundaries wrap); with `chunks` only. */
  position?: number;
  /** Added to every activation and gradient tag (elastic epochs: an aborted attempt's tensors never match). */
  tagOffset?: number;
}

/** One model chunk a peer holds: its stage and its views of the peer's parameters and gradients. */
export interface StageChunk {
  stage: StageSession;
  params: Float32Array;
  grads: Float32Array;
}

/**
 * The tag of a tensor crossing a chunk boundary (self: this peer's position; null, no chunks): tag + 2 k, where k is the chunk of the lower
 * virtual stage of the two (the sender of activations, the receiver of gradients). The last peer's
 * chunk k feeds the first peer's chunk k + 1 over the same link as the others' chunk k + 1, so the
 * chunk keeps them apart; with one chunk the tags are ACT_TAG and GRAD_TAG.
 */
export function chunkTag(
  op: Extract<AnyOp, { kind: 'sendAct' | 'recvAct' | 'sendGrad' | 'recvGrad' }>,
  self: number | null,
): number {
  const chunk = op.chunk ?? 0;
  const act = op.kind === 'sendAct' || op.kind === 'recvAct';
  // sendAct and recvGrad: this chunk is the lower one; recvAct and sendGrad: the peer's, one lower
  // when the peer is past the wrap (a higher device index).
  const lowerIsSelf = op.kind === 'sendAct' || op.kind === 'recvGrad';
  const peer = op.kind === 'sendAct' || op.kind === 'sendGrad' ? op.to : op.from;
  const lower = lowerIsSelf || self === null || peer < self ? chunk : chunk - 1;
  return (act ? ACT_TAG : GRAD_TAG) + 2 * lower;
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

/** The smallest share of the dense bytes a zero-skipping payload must save to be sent instead. */
export const SKIP_ZEROS_MIN_SAVING = 0.1;

/**
 * How this stage's tensors travel: the codecs of the payloads it sends and accepts, float32 raw
 * ('float32') among them when there is no codec.
 */
export function wireFormats(
  codec: PayloadCompressor | null,
  skipZeros: boolean,
): ('float32' | PayloadCodec)[] {
  if (codec?.kind === 'int8' || codec?.kind === 'topk') return [codec.kind];
  if (codec) return skipZeros ? ['fp16', 'sparse-fp16'] : ['fp16'];
  return skipZeros ? ['float32', 'sparse'] : ['float32'];
}

/** `data` as it goes on the wire: raw float32, the codec's payload, or zero-skipping when that is smaller enough. */
export function encodeTensor(
  data: Float32Array,
  codec: PayloadCompressor | null,
  skipZeros: boolean,
): { dtype: 'float32' | 'uint8'; payload: Uint8Array } {
  if (skipZeros && (codec === null || codec.kind === 'fp16')) {
    const kind = codec ? 'sparse-fp16' : 'sparse';
    const dense = codec ? fp16Bytes(data.length) : 4 * data.length;
    const sent = countSent(data);
    if (sparseBytes(kind, data.length, sent) <= dense * (1 - SKIP_ZEROS_MIN_SAVING))
      return { dtype: 'uint8', payload: encodeSparse(data, kind, sent) };
  }
  if (codec) return { dtype: 'uint8', payload: encodePayload(codec, data) };
  return { dtype: 'float32', payload: asBytes(data) };
}

/** The tensor's float32 values: as sent, or decoded from a payload of one of the `accepted` formats. */
export function tensorValues(
  dtype: string,
  data: Uint8Array,
  accepted: readonly ('float32' | PayloadCodec)[],
): Float32Array {
  if (dtype === 'float32' && accepted.includes('float32')) return f32View(data);
  if (dtype === 'uint8') {
    const got = payloadCodec(data);
    if (accepted.includes(got)) return decode(data);
    throw new ProtocolError(
      'bad-message',
      `expected ${accepted.join(' or ')} activations, got a ${got} payload`,
    );
  }
  throw new ProtocolError('bad-message', `expected ${accepted.join(' or ')} activations, got ${dtype}`);
}

interface Arrival {
  values: Float32Array;
  /** Bytes on the wire (the payload, compressed or not). */
  bytes: number;
}

type Span = (kind: SpanKind, t0: number, extra?: Omit<SpanMeta, 'step'>) => void;

/**
 * The step's communication lane: receives posted ahead (keyed tag/mb), sends queued without being
 * awaited. `finish` awaits every send; `fail` aborts what is still pending and waits for it to settle.
 */
function stepComm(ctx: PipelineStepContext, span: Span) {
  const { mesh, runId, step, stage } = ctx;
  const overlap = ctx.overlap ?? true;
  const codec = ctx.codec ?? null;
  const skipZeros = ctx.skipZeros ?? false;
  const accepted = wireFormats(codec, skipZeros);
  const offset = ctx.tagOffset ?? 0;
  const key = (mb: number, tag: number): TensorKey => ({ runId, step, microBatch: mb, tag: tag + offset });
  // Aborts the posted receives when the step fails (or when the caller aborts).
  const life = new AbortController();
  const signal = AbortSignal.any([ctx.signal, life.signal]);
  const posted = new Map<string, Promise<Arrival>>();
  const sends: Promise<void>[] = [];
  const now = (): number => ctx.spans.now();

  const neighbour = (peer: string | null, what: string): string => {
    if (!peer) throw new PipelineError(`stage ${stage.first}-${stage.end} has no neighbour to ${what}`);
    return peer;
  };

  const post = (peer: string | null, mb: number, tag: number): Promise<Arrival> => {
    const from = neighbour(peer, 'receive from');
    const p = mesh.recvTensor(from, key(mb, tag), { signal }).then((msg) => ({
      values: tensorValues(msg.dtype, msg.data, accepted),
      bytes: msg.data.byteLength,
    }));
    p.catch(() => {}); // observed by its recv op, or settled in fail()
    posted.set(`${tag}/${mb}`, p);
    return p;
  };

  return {
    signal,
    /** Posts every receive of the op list (the overlapped executor, before the first compute). */
    postAll(): void {
      if (!overlap) return;
      const self = ctx.position ?? null;
      for (const op of ctx.ops) {
        if (op.kind === 'recvAct') void post(ctx.prev, op.mb, chunkTag(op, self));
        else if (op.kind === 'recvGrad') void post(ctx.next, op.mb, chunkTag(op, self));
      }
    },
    /** Waits for micro-batch mb's tensor; the span is the compute lane's wait (near 0 if it arrived). */
    async recv(peer: string | null, mb: number, tag: number): Promise<Float32Array> {
      const from = neighbour(peer, 'receive from');
      const t0 = now();
      const id = `${tag}/${mb}`;
      const pending = posted.get(id) ?? post(from, mb, tag);
      posted.delete(id);
      const got = await pending;
      span('recv', t0, { microBatch: mb, bytes: got.bytes, peer: from });
      return got.values;
    },
    /** Encodes and queues `data`; awaited here only without overlap. */
    async send(peer: string | null, mb: number, tag: number, data: Float32Array): Promise<void> {
      const to = neighbour(peer, 'send to');
      const t0 = now();
      const { dtype, payload } = encodeTensor(data, codec, skipZeros);
      const shape = [dtype === 'uint8' ? payload.byteLength : data.length];
      const bytes = payload.byteLength;
      const p = mesh
        .sendTensor(to, { ...key(mb, tag), dtype, shape, data: payload }, { signal })
        .then(() => span('send', t0, { microBatch: mb, bytes, peer: to }));
      if (!overlap) return p;
      // Not awaited: the next op computes while the link drains (finish() awaits it).
      p.catch(() => {}); // observed in finish(); no unhandled rejection while later ops run
      sends.push(p);
    },
    async finish(): Promise<void> {
      const t0 = now();
      await Promise.all(sends);
      if (now() - t0 > 0.05) span('wait', t0);
      if (posted.size > 0) throw new PipelineError(`${posted.size} posted receives were never used`);
    },
    async fail(reason: unknown): Promise<void> {
      life.abort(reason);
      await Promise.allSettled([...sends, ...posted.values()]);
    },
  };
}

/** The stage (chunk) that computes `op`. */
function stageOf(ctx: PipelineStepContext, op: Exclude<AnyOp, { kind: 'optimizer' }>): StageSession {
  const stage = ctx.chunks ? ctx.chunks[op.chunk ?? 0]?.stage : (op.chunk ?? 0) === 0 ? ctx.stage : undefined;
  if (!stage) throw new PipelineError(`chunk ${op.chunk}: this peer holds no such chunk`);
  return stage;
}

/**
 * One compute op: forward takes the previous stage's activations, backward (or its input part I)
 * the next stage's gradients dy; W takes nothing. Returns what the op's send carries.
 */
function computeOp(
  stage: StageSession,
  op: Extract<AnyOp, { kind: 'forward' | 'backward' | 'backwardInput' | 'backwardWeight' }>,
  input: Float32Array | null,
): Promise<Float32Array | null> {
  switch (op.kind) {
    case 'forward':
      return stage.forward(op.mb, input);
    case 'backward':
      return stage.backward(op.mb, input);
    case 'backwardInput':
    case 'backwardWeight': {
      if (!stage.backwardInput || !stage.backwardWeight)
        throw new PipelineError(`${op.kind}: this stage has no split backward`);
      if (op.kind === 'backwardInput') return stage.backwardInput(op.mb, input);
      return stage.backwardWeight(op.mb).then(() => null);
    }
  }
}

/** Uploads each chunk's parameters (one chunk: ctx.stage with ctx.params). */
async function beginChunks(ctx: PipelineStepContext, signal: AbortSignal): Promise<void> {
  if (!ctx.chunks) return ctx.stage.beginStep(ctx.step, ctx.params, { signal });
  for (const c of ctx.chunks) await c.stage.beginStep(ctx.step, c.params, { signal });
}

/**
 * Ends each chunk's step (its gradient sum lands in its view of ctx.grads). The loss is the last
 * virtual stage's; the activation peak is the sum of the chunks' peaks (an upper bound of the peer's:
 * the chunks' peaks need not coincide).
 */
async function endChunks(ctx: PipelineStepContext): Promise<StageStepOutcome> {
  if (!ctx.chunks) return ctx.stage.endStep(ctx.grads);
  let loss: number | null = null;
  let peak = 0;
  let peakNo = 0;
  for (const c of ctx.chunks) {
    const o = await c.stage.endStep(c.grads);
    loss = o.loss ?? loss;
    peak += o.peakActivationBytes;
    peakNo += o.peakActivationBytesNoRecompute;
  }
  return { loss, peakActivationBytes: peak, peakActivationBytesNoRecompute: peakNo };
}

/** Runs the step's ops in order; resolves when every op (and every send) is done. */
export async function runPipelineStep(ctx: PipelineStepContext): Promise<StageStepOutcome> {
  const { step, stage, spans } = ctx;
  const now = (): number => spans.now();
  const span: Span = (kind, t0, extra = {}) => spans.record(kind, t0, now() - t0, { step, ...extra });
  const comm = stepComm(ctx, span);
  const { signal } = comm;
  // Keyed chunk/mb: a peer of an interleaved schedule holds several chunks' tensors of one mb.
  const received = new Map<string, Float32Array>();
  const produced = new Map<string, Float32Array>();
  // Zero-gated inputs: where each held micro-batch's input was not zero (its gradient is gated by it).
  const masks = new Map<string, Int32Array>();
  const gated = (chunk: number): boolean => (ctx.skipZeros ?? false) && (ctx.gatedInput?.(chunk) ?? false);
  const id = (op: Exclude<AnyOp, { kind: 'optimizer' }>): string => `${op.chunk ?? 0}/${op.mb}`;
  const self = ctx.position ?? null;
  let held = 0;
  let outcome: StageStepOutcome | null = null;
  const take = (op: Exclude<AnyOp, { kind: 'optimizer' }>): Float32Array => {
    const data = produced.get(id(op));
    if (!data) throw new PipelineError(`micro-batch ${op.mb}: nothing to send`);
    produced.delete(id(op));
    return data;
  };

  comm.postAll();
  try {
    await beginChunks(ctx, signal);
    for (const op of ctx.ops) {
      signal.throwIfAborted();
      switch (op.kind) {
        case 'recvAct': {
          const input = await comm.recv(ctx.prev, op.mb, chunkTag(op, self));
          if (gated(op.chunk ?? 0)) masks.set(id(op), nonZeroMask(input));
          received.set(id(op), input);
          break;
        }
        case 'recvGrad':
          received.set(id(op), await comm.recv(ctx.next, op.mb, chunkTag(op, self)));
          break;
        case 'forward':
        case 'backward':
        case 'backwardInput':
        case 'backwardWeight': {
          const t0 = now();
          const input = received.get(id(op)) ?? null;
          received.delete(id(op));
          const stage = stageOf(ctx, op);
          const out = await computeOp(stage, op, input);
          if (out) produced.set(id(op), out);
          // The split parts show as backward spans (the span kinds have no I / W). On a compute
          // thread the span is when the op ran there: the hops to it and back are not compute.
          const kind = op.kind === 'forward' ? 'forward' : 'backward';
          const ran = stage.lastRan?.();
          // Interleaved: which of this peer's chunks ran it (the timeline shades chunks apart).
          const at = { microBatch: op.mb, ...(ctx.chunks ? { chunk: op.chunk ?? 0 } : {}) };
          if (ran) spans.record(kind, ran.startMs, ran.endMs - ran.startMs, { step, ...at });
          else span(kind, t0, at);
          // Activations are held from the forward to the backward, or to the W of a split one.
          if (op.kind !== 'backwardInput') ctx.onHeld?.(op.kind === 'forward' ? ++held : --held);
          break;
        }
        case 'sendAct':
          await comm.send(ctx.next, op.mb, chunkTag(op, self), take(op));
          break;
        case 'sendGrad': {
          const dx = take(op);
          const mask = masks.get(id(op));
          masks.delete(id(op));
          await comm.send(ctx.prev, op.mb, chunkTag(op, self), mask ? gateGradient(dx, mask) : dx);
          break;
        }
        case 'optimizer': {
          const t0 = now();
          outcome = await endChunks(ctx);
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
    await comm.finish();
  } catch (e) {
    for (const c of ctx.chunks ?? [{ stage }]) c.stage.reset();
    await comm.fail(e);
    throw e;
  }
  if (!outcome) throw new PipelineError('the schedule has no optimizer op');
  return outcome;
}
