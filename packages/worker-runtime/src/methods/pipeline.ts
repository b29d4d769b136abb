// Pipeline parallelism: rank = replica x P + stage; each worker holds one stage (a contiguous range
// of layers) and walks its schedule's op list per step (../pipeline.ts is the engine). Replica 0's
// stages gather their parameters on rank 0, which evaluates the whole model. hybrid.ts is this
// method plus the stage group's averaging over the replicas.
import { PHASE_TIMEOUTS, ProtocolError, modelPreset, runShape, zeroGatedOutput } from '@peertrain/protocol';
import type { RunConfig } from '@peertrain/protocol';
import { createCompressor } from '@peertrain/compress';
import type { PayloadCompressor } from '@peertrain/compress';
import { createOptimizer } from '@peertrain/optim';
import { schedule } from '@peertrain/schedules';
import type { SpanRecorder } from '@peertrain/telemetry';
import type { StageSession, StageStepOutcome } from '../compute.ts';
import { hopTimed } from '../phase-timeouts.ts';
import { PARAM_TAG_BASE, f32View, runPipelineStep } from '../pipeline.ts';
import type { StageChunk } from '../pipeline.ts';
import type { MethodContext, MethodLinks, MethodName, MethodRun, Placement, WorkerMethod } from './types.ts';
import type { StepOutcome } from './types.ts';

/** Where this worker sits in the replicas x stages grid. */
export interface StageCoords {
  /** Stages per replica (P) and replicas (R). */
  stages: number;
  replicas: number;
  stage: number;
  replica: number;
  /** The peer id at (replica, stage). */
  at: (replica: number, stage: number) => string;
}

export function stageCoords({ config, peers, rank }: Placement): StageCoords {
  const { stages, replicas } = runShape(config);
  return {
    stages,
    replicas,
    stage: rank % stages,
    replica: Math.floor(rank / stages),
    at: (rep, st) => peers[rep * stages + st]!,
  };
}

/** The stage's own links: its replica's neighbours, and replica 0's parameter gather on rank 0. */
export function pipelineLinks(assign: Placement): MethodLinks {
  const { stages: p, stage, replica, at } = stageCoords(assign);
  const dial: string[] = [];
  const need: string[] = [];
  // Pipeline neighbours: we dial the next stage; the previous one dials us.
  if (stage + 1 < p) {
    dial.push(at(replica, stage + 1));
    need.push(at(replica, stage + 1));
  }
  if (stage > 0) need.push(at(replica, stage - 1));
  // Interleaved: the last stage's chunks feed the first's next chunks (a ring; P = 2 has the link).
  if (assign.config.schedule === 'interleaved' && p > 2) {
    if (stage === p - 1) dial.push(at(replica, 0));
    if (stage === p - 1 || stage === 0) need.push(at(replica, stage === 0 ? p - 1 : 0));
  }
  // Replica 0's stages send their parameters to rank 0 for evaluation (stage 1 is already linked).
  if (replica === 0 && stage >= 2) {
    dial.push(assign.peers[0]!);
    need.push(assign.peers[0]!);
  }
  if (assign.rank === 0) for (let st = 2; st < p; st++) need.push(at(0, st));
  return { dial: [...new Set(dial)], need: [...new Set(need)] };
}

/** A stage's run, for a method's averaging hook. */
export interface StageRun {
  ctx: MethodContext;
  coords: StageCoords;
  /** The stage's parameters [stage.paramCount] and the step's gradient sum of the same length. */
  params: Float32Array;
  grads: Float32Array;
}

export interface StageMethodSpec {
  name: Extract<MethodName, 'pipeline' | 'hybrid'>;
  links: (placement: Placement) => MethodLinks;
  /** Turns the step's gradient sum into the update's gradient, in place (hybrid: the stage group's mean). */
  average?: (run: StageRun, step: number) => Promise<void>;
}

/** A method whose workers each hold one pipeline stage; `spec` says what differs. */
export function stageMethod(spec: StageMethodSpec): WorkerMethod {
  return { name: spec.name, links: spec.links, setup: (ctx) => setupStage(ctx, spec) };
}

function setupStage(ctx: MethodContext, spec: StageMethodSpec): MethodRun {
  const { assign, session, spans } = ctx;
  const { config, rank } = assign;
  const coords = stageCoords(assign);
  // The stage's slice only; rank 0 also keeps a whole-model buffer that the stages' parameters are
  // gathered into for evaluation.
  const full = session.initParams();
  const { stage, params, grads, chunks } = stageChunks(ctx, coords, full);
  const optimizer = createOptimizer(config.optimizer, config.lr, params.length);
  const V = config.virtualStages;
  const ops = schedule(config.schedule, coords.stages, config.microBatches, { virtualStages: V })[
    coords.stage
  ]!;
  const run: StageRun = { ctx, coords, params, grads };
  const codec = activationCodec(config.activationCompress, config.seed + rank);
  // Each activation or gradient received from a neighbour stage has its named timeout.
  const mesh = hopTimed(ctx.mesh, PHASE_TIMEOUTS.stageTransfer);
  return {
    paramBytes: params.byteLength,
    evalParams: rank === 0 ? full : null,
    async step(step) {
      const outcome = await runPipelineStep({
        mesh,
        runId: assign.runId,
        step,
        ops,
        stage,
        prev: neighbour(coords, -1, V > 1),
        next: neighbour(coords, 1, V > 1),
        params,
        grads,
        spans,
        signal: ctx.signal,
        onHeld: ctx.onHeld,
        codec,
        ...zeroSkipping(config, chunks ?? [{ stage }]),
        ...(chunks ? { chunks, position: coords.stage } : {}),
        optimizer: async () => {
          await spec.average?.(run, step);
          const to = spans.now();
          optimizer.step(params, grads);
          spans.record('optimizer', to, spans.now() - to, { step });
        },
      });
      return stepOutcome(spans, step, outcome);
    },
    beforeEval: (after) => gatherParams(ctx, coords, chunks ?? [{ stage, params }], full, after),
    dispose: () => undefined,
  };
}

/** A pipeline step's report: its computation is every compute-lane span it recorded (forward, backward, optimizer...). */
export function stepOutcome(spans: SpanRecorder, step: number, outcome: StageStepOutcome): StepOutcome {
  let computeMs = 0;
  for (const sp of spans.snapshot()) if (sp.step === step && sp.lane === 'compute') computeMs += sp.durMs;
  const { peakActivationBytes, peakActivationBytesNoRecompute } = outcome;
  return {
    loss: outcome.loss,
    computeMs,
    activation: { peakActivationBytes, peakActivationBytesNoRecompute },
  };
}

/** The peer `dir` stages away in this replica; `ring`: the ends wrap (interleaved), else null there. */
export function neighbour(coords: StageCoords, dir: 1 | -1, ring: boolean): string | null {
  const st = coords.stage + dir;
  if (st >= 0 && st < coords.stages) return coords.at(coords.replica, st);
  return ring ? coords.at(coords.replica, (st + coords.stages) % coords.stages) : null;
}

/**
 * The stage's layers: one range (stage s of assign.stages), or for interleaved the V chunks
 * s, s + P, ... of the P V ranges, their parameters back to back in `params` (chunk order) with
 * each chunk's views. `stage` is the first chunk.
 */
export function stageChunks(
  ctx: MethodContext,
  coords: StageCoords,
  full: Float32Array,
): { stage: StageSession; params: Float32Array; grads: Float32Array; chunks: StageChunk[] | null } {
  const V = ctx.assign.config.virtualStages;
  const ranges = Array.from({ length: V }, (_, k) => ctx.assign.stages?.[k * coords.stages + coords.stage]);
  const sessions = ranges.map((range) => {
    if (!range) throw new ProtocolError('bad-message', 'a stage assignment without its stage ranges');
    return ctx.session.stage(range);
  });
  const count = sessions.reduce((a, st) => a + st.paramCount, 0);
  const params = new Float32Array(count);
  const grads = new Float32Array(count);
  let at = 0;
  const chunks = sessions.map((st) => {
    const c = {
      stage: st,
      params: params.subarray(at, at + st.paramCount),
      grads: grads.subarray(at, at + st.paramCount),
    };
    c.params.set(full.subarray(st.paramOffset, st.paramOffset + st.paramCount));
    at += st.paramCount;
    return c;
  });
  return { stage: sessions[0]!, params, grads, chunks: V > 1 ? chunks : null };
}

/**
 * The step context's zero skipping (config activationSkipZeros): on, and which of the peer's chunks
 * take a zero-gated input (their gradients are gated before they go back).
 */
export function zeroSkipping(
  config: Pick<RunConfig, 'activationSkipZeros' | 'model'>,
  chunks: readonly { stage: { first: number } }[],
): { skipZeros: boolean; gatedInput: (chunk: number) => boolean } {
  const layers = modelPreset(config.model).layers;
  const gated = chunks.map((c) => zeroGatedOutput(layers, c.stage.first));
  return { skipZeros: config.activationSkipZeros, gatedInput: (chunk) => gated[chunk] ?? false };
}

/** The codec of what this stage sends (int8's stochastic rounding seeded per rank); null for none. */
export function activationCodec(kind: 'none' | 'fp16' | 'int8', seed: number): PayloadCompressor | null {
  if (kind === 'none') return null;
  const c = createCompressor({ kind }, { length: 0, seed });
  return c.kind === 'fp16' || c.kind === 'int8' ? c : null;
}

/**
 * Replica 0's stages hand their parameters to rank 0, which evaluates the whole model (`full`);
 * range c of assign.stages is held by stage c mod P (interleaved: P V chunks), keyed by its index.
 */
export async function gatherParams(
  ctx: MethodContext,
  coords: StageCoords,
  chunks: readonly { stage: StageSession; params: Float32Array }[],
  full: Float32Array,
  step: number,
): Promise<void> {
  const { mesh, assign, signal, session } = ctx;
  if (coords.replica !== 0) return;
  const P = coords.stages;
  const key = (c: number) => ({ runId: assign.runId, step, microBatch: null, tag: PARAM_TAG_BASE + c });
  if (assign.rank !== 0) {
    for (const [k, { params }] of chunks.entries()) {
      if (params.length === 0) continue;
      const bytes = new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
      await mesh.sendTensor(
        assign.peers[0]!,
        { ...key(k * P + coords.stage), dtype: 'float32', shape: [params.length], data: bytes },
        { signal },
      );
    }
    return;
  }
  for (const { stage, params } of chunks) full.set(params, stage.paramOffset);
  await Promise.all(
    (assign.stages ?? []).map(async (range, c) => {
      if (c % P === 0) return;
      const { offset, count } = session.paramRange(range);
      if (count === 0) return;
      const msg = await mesh.recvTensor(coords.at(0, c % P), key(c), { signal });
      const got = f32View(msg.data);
      if (got.length !== count)
        throw new ProtocolError('bad-message', `stage ${c} sent ${got.length} parameters, expected ${count}`);
      full.set(got, offset);
    }),
  );
}

export const pipelineMethod: WorkerMethod = stageMethod({ name: 'pipeline', links: pipelineLinks });
