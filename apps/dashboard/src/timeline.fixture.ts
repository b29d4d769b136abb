import type { EvalPoint, PeerView, PipelineView, StepPoint, TimelineSpan } from '@peertrain/coordinator';

// Synthetic GPipe spans for tests (and for looking at the timeline without a session): P stages,
// M micro-batches, fixed forward / backward / transfer times, steps back to back.

export interface SyntheticOptions {
  stages: number;
  microBatches: number;
  steps: number;
  forwardMs?: number;
  backwardMs?: number;
  transferMs?: number;
  /** Activation bytes per micro-batch send. */
  bytes?: number;
  t0?: number;
}

export const stagePeer = (p: number): string => `pt-room-w-s${p}`;

export function syntheticGpipe(o: SyntheticOptions): { spans: TimelineSpan[]; pipeline: PipelineView } {
  const { stages: P, microBatches: M } = o;
  const f = o.forwardMs ?? 4;
  const b = o.backwardMs ?? 8;
  const c = o.transferMs ?? 1;
  const bytes = o.bytes ?? 32 * 1024;
  const spans: TimelineSpan[] = [];
  const add = (s: TimelineSpan): void => void spans.push(s);
  let t0 = o.t0 ?? 1000;
  for (let step = 0; step < o.steps; step++) {
    for (let m = 0; m < M; m++) {
      for (let p = 0; p < P; p++) {
        const start = t0 + (m + p) * (f + c);
        add({
          peerId: stagePeer(p),
          kind: 'forward',
          startMs: start,
          durMs: f,
          step,
          microBatch: m,
          lane: 'compute',
        });
        if (p < P - 1) {
          const base = { startMs: start + f, durMs: c, step, microBatch: m, bytes, lane: 'comm' as const };
          add({ ...base, peerId: stagePeer(p), kind: 'send', peer: stagePeer(p + 1) });
          add({ ...base, peerId: stagePeer(p + 1), kind: 'recv', peer: stagePeer(p) });
        }
      }
    }
    const back = t0 + (M - 1 + P - 1) * (f + c) + f;
    let end = back;
    for (let m = 0; m < M; m++) {
      for (let p = P - 1; p >= 0; p--) {
        const start = back + (m + (P - 1 - p)) * (b + c);
        add({
          peerId: stagePeer(p),
          kind: 'backward',
          startMs: start,
          durMs: b,
          step,
          microBatch: m,
          lane: 'compute',
        });
        if (p > 0) {
          const base = { startMs: start + b, durMs: c, step, microBatch: m, bytes, lane: 'comm' as const };
          add({ ...base, peerId: stagePeer(p), kind: 'send', peer: stagePeer(p - 1) });
          add({ ...base, peerId: stagePeer(p - 1), kind: 'recv', peer: stagePeer(p) });
        }
        end = Math.max(end, start + b);
      }
    }
    for (let p = 0; p < P; p++) {
      add({ peerId: stagePeer(p), kind: 'optimizer', startMs: end, durMs: 1, step, lane: 'compute' });
    }
    t0 = end + 2;
  }
  const pipeline: PipelineView = {
    stages: P,
    replicas: 1,
    microBatches: M,
    schedule: 'gpipe',
    recompute: false,
    assignments: Array.from({ length: P }, (_, p) => ({
      peerId: stagePeer(p),
      stage: p,
      replica: 0,
      first: p * 3,
      end: p * 3 + 3,
    })),
    predictedStepMs: null,
    bubbleTheory: (P - 1) / (M + P - 1),
    bubbleMeasured: null,
    bubbles: [],
  };
  return { spans, pipeline };
}

// ---- made-up but plausible room telemetry and chart data (the gallery's scenes, tests) ----

const BACKEND_MIX = [
  {
    backend: 'webgpu',
    gflops: 310,
    adapter: { vendor: 'apple', architecture: 'metal-3', isFallbackAdapter: false },
  },
  { backend: 'wasm', gflops: 17.4 },
  { backend: 'webgl', gflops: 42.5 },
  {
    backend: 'webgpu',
    gflops: 0.35,
    adapter: { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true },
  },
] as const;

/** Peers for a pipeline's assignments: a mix of devices, states, memory and links (deterministic). */
export function fixturePeers(pipeline: PipelineView, step: number): PeerView[] {
  return pipeline.assignments.map((a, rank) => {
    const d = BACKEND_MIX[rank % BACKEND_MIX.length]!;
    const gpu = d.backend === 'webgpu' || d.backend === 'webgl';
    const paramBytes = 400_000 + ((rank * 7919) % 5) * 120_000;
    const state: PeerView['state'] =
      rank === 5 ? 'stalled' : rank % 4 === 3 ? 'waiting' : rank % 4 === 2 ? 'sending' : 'computing';
    return {
      peerId: a.peerId,
      state,
      device: {
        backend: d.backend,
        gflops: d.gflops,
        probes: [{ backend: d.backend, ok: true, gflops: d.gflops }],
        ...('adapter' in d
          ? {
              adapter: { ...d.adapter },
              limits: { maxStorageBuffersPerShaderStage: 10, maxComputeWorkgroupStorageSize: 32768 },
            }
          : {}),
        hardwareConcurrency: 4 + (rank % 3) * 2,
      },
      rank,
      role: 'stage',
      shard: { start: 0, count: 60_000 }, // one replica: every stage reads the whole training set
      stage: { stage: a.stage, replica: a.replica, first: a.first, end: a.end },
      rttMs: 0.4 + (rank % 5) * 0.35,
      clockOffsetMs: rank * 1.7 - 3,
      lastStep: rank === 5 ? step - 3 : step,
      lastComputeMs: 55 + (rank % 6) * 4,
      lastCommMs: 6 + (rank % 3) * 3,
      bytesSent: 1_200_000 * (rank + 1),
      framesRefused: rank === 9 ? 1 : 0,
      memory: {
        numBytes: paramBytes * 3 + 260_000 * (rank % 4),
        numTensors: 24 + (rank % 5) * 6,
        ...(gpu ? { numBytesInGPU: paramBytes * 2 } : {}),
        paramBytes,
        peakActivationBytes: 120_000 + (rank % 3) * 40_000,
      },
      bandwidthBytesPerSec: 8e6 + ((rank * 37) % 16) * 1.1e6,
    };
  });
}

/**
 * `n` steps of a run that learns (loss falls, accuracy rises) over `ranks` ranks, `globalBatch`
 * samples a step: chart fixtures. Step times wander slowly with a little deterministic jitter; the
 * loss spikes for one step in every thousand.
 */
export function fixtureSteps(
  n: number,
  ranks: number,
  globalBatch: number,
): { steps: StepPoint[]; evals: EvalPoint[] } {
  const steps: StepPoint[] = [];
  let t = 0;
  for (let step = 0; step < n; step++) {
    const jitter = ((step * 7919) % 17) - 8; // -8..8 ms
    const stepMs = 140 + 15 * Math.sin(step / 90) + jitter;
    t += stepMs;
    steps.push({
      step,
      // A one-step spike every 1,000 steps (a bad batch): merged chart points must not hide it.
      loss:
        2.3 * Math.exp(-step / 180) + 0.08 + 0.03 * Math.sin(step * 1.7) + (step % 1000 === 700 ? 1.2 : 0),
      tMs: t,
      samplesPerSec: (globalBatch * (step + 1)) / (t / 1000),
      computeMs: 90,
      commMs: 20,
      stepMs,
      bytes: 2_400_000 + 40_000 * Math.sin(step / 60) + 2_000 * jitter,
      computeMsByRank: Array.from(
        { length: ranks },
        (_, r) => stepMs * (0.45 + (0.4 * ((r * 5) % ranks)) / ranks + 0.04 * Math.sin(step / 120 + r)),
      ),
    });
  }
  const evals: EvalPoint[] = [];
  for (let step = 50; step <= n; step += 50) {
    evals.push({ step, accuracy: 0.96 - 0.8 * Math.exp(-step / 150), loss: 0.3, tMs: steps[step - 1]!.tMs });
  }
  return { steps, evals };
}
