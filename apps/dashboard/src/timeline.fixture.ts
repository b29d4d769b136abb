import type { PipelineView, TimelineSpan } from '@peertrain/coordinator';

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
