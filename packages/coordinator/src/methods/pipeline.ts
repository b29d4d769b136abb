import { runShape } from '@peertrain/protocol';
import { bubbleTheory } from '@peertrain/schedules';
import type { PipelineReport, PipelineView } from '../types.ts';
import type { PipelinePlan } from '../planning.ts';
import type { CoordinatorMethod, MethodContext, MethodRun, RankAssignment } from './method.ts';
import { PIPELINE_WINDOW, baseAssign, replicaShards } from './method.ts';

/**
 * Pipeline parallelism, and hybrid (R pipeline replicas, data parallel across replicas stage by
 * stage): the same coordinator side. Replica 0's devices profile the layers and the planner cuts
 * the model into P stages; rank r is stage r mod P of replica floor(r / P); each replica gets its
 * own data shard. The measured bubble comes from replica 0's spans.
 */
export function stagePipeline(name: string): CoordinatorMethod {
  return { name, prepare: preparePipeline };
}

async function preparePipeline(ctx: MethodContext): Promise<MethodRun> {
  const { config } = ctx;
  const shape = runShape(config);
  const P = shape.stages;
  const replica0 = ctx.peers.slice(0, P);
  const pipe = await ctx.planPipeline(replica0);
  const shards = replicaShards(config);
  // P ranges, or P * V chunks for interleaved (chunk c on the peer of stage c mod P)
  const stages = pipe.plan.stages.map(({ first, end }) => ({ first, end }));
  const V = config.virtualStages;
  const stageRanks = P * shape.replicas;
  const assignments = ctx.peers.map((_, rank): RankAssignment => {
    // Elastic pipelines' spares: the replica's data loaded, no stage until an epoch gives one.
    if (rank >= stageRanks)
      return {
        role: 'stage',
        shard: shards[0]!,
        stage: null,
        message: {
          ...baseAssign(ctx, rank, shards, shards[0]!),
          ...{ role: { kind: 'stage', stage: 0, replica: 0 }, stages, joining: true },
        },
        traceName: `rank ${rank}: spare`,
      };
    const stage = rank % P;
    const replica = Math.floor(rank / P);
    const range = pipe.plan.stages[stage]!;
    const shard = shards[replica]!;
    const replicaName = shape.replicas > 1 ? ` replica ${replica}` : '';
    const held = Array.from({ length: V }, (_, k) => stages[k * P + stage]!);
    return {
      role: 'stage',
      shard,
      stage: { stage, replica, first: range.first, end: range.end, ...(V > 1 ? { chunks: held } : {}) },
      message: { ...baseAssign(ctx, rank, shards, shard), role: { kind: 'stage', stage, replica }, stages },
      traceName: `rank ${rank}: stage ${stage}${replicaName} (layers ${held.map((r) => `${r.first}-${r.end - 1}`).join(', ')})`,
    };
  });
  const pipelineView: PipelineView = {
    stages: P,
    replicas: shape.replicas,
    microBatches: config.microBatches,
    schedule: config.schedule,
    virtualStages: V,
    recompute: config.recompute,
    assignments: assignments
      .slice(0, stageRanks)
      .map((a, rank) => ({ peerId: ctx.peers[rank]!.peerId, ...a.stage! })),
    predictedStepMs: pipe.plan.predictedStepMs,
    bubbleTheory: bubbleTheory(config.schedule, P, config.microBatches, V),
    bubbleMeasured: null,
    bubbles: [],
    ...(config.elastic ? { snapshotStep: 0 } : {}),
  };
  // Per stage of replica 0, the largest activation peaks reported (with and without recomputation).
  const peaks = new Map<number, { withRe: number; without: number }>();
  const crossed = stepBytes();
  return {
    assignments,
    pipelineView,
    bubble: { peers: new Set(replica0.map((p) => p.peerId)), stages: P },
    // Two steps in flight: a pipeline step (hundreds of ms) hides the grant's round trip already,
    // and a stage lost mid-run has fewer granted steps to roll back (stage-spares.ts).
    barrierWindow: PIPELINE_WINDOW,
    onStepDone(rank, msg) {
      for (const sp of msg.spans ?? []) if (sp.kind === 'send') crossed.add(sp.step, sp.bytes ?? 0);
      if (msg.peakActivationBytes === undefined || rank >= P) return;
      const prev = peaks.get(rank) ?? { withRe: 0, without: 0 };
      peaks.set(rank, {
        withRe: Math.max(prev.withRe, msg.peakActivationBytes),
        without: Math.max(prev.without, msg.peakActivationBytesNoRecompute ?? 0),
      });
    },
    reportFields: (pv) =>
      pv
        ? {
            pipeline: {
              ...pipelineReport(
                pv,
                pipe,
                peaks,
                replica0.map((p) => p.peerId),
              ),
              activationCompress: config.activationCompress,
              activationSkipZeros: config.activationSkipZeros,
              ...(crossed.steps() > 0 ? { bytesBetweenStagesPerStep: crossed.perStep() } : {}),
            },
          }
        : {},
  };
}

/** Bytes the stages sent each other, summed over the steps seen (every rank's send spans). */
function stepBytes() {
  const seen = new Set<number>();
  let total = 0;
  return {
    add(step: number, bytes: number): void {
      seen.add(step);
      total += bytes;
    },
    steps: (): number => seen.size,
    perStep: (): number => total / seen.size,
  };
}

function pipelineReport(
  pv: PipelineView,
  pipe: PipelinePlan,
  peaks: ReadonlyMap<number, { withRe: number; without: number }>,
  replica0: readonly string[],
): PipelineReport {
  const V = pv.virtualStages ?? 1;
  return {
    schedule: pv.schedule,
    stages: pv.stages,
    replicas: pv.replicas,
    microBatches: pv.microBatches,
    recompute: pv.recompute,
    bubbleMeasured: pv.bubbleMeasured ?? NaN,
    bubbleTheory: pv.bubbleTheory,
    predictedStepMs: pv.predictedStepMs,
    ...(V > 1 ? { virtualStages: V } : {}),
    // One entry per peer; an interleaved peer's V chunks are stages s, s + P, ... of the plan.
    perStage: replica0.map((peerId, i) => {
      const ranges = Array.from({ length: V }, (_, k) => pipe.plan.stages[k * pv.stages + i]!);
      const layers = ranges.flatMap((st) => pipe.layers.slice(st.first, st.end));
      const peak = peaks.get(i) ?? { withRe: 0, without: 0 };
      const span = (st: { first: number; end: number }): [number, number] => [st.first, st.end - 1];
      return {
        stage: i,
        layers: span(ranges[0]!),
        ...(V > 1 ? { chunks: ranges.map(span) } : {}),
        layerNames: layers.map((l) => l.name),
        parameterBytes: layers.reduce((a, l) => a + l.paramBytes, 0),
        peakActivationBytes: peak.withRe,
        peakActivationBytesNoRecompute: peak.without,
        peerId,
      };
    }),
  };
}
