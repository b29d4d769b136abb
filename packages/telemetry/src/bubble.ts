import type { Span } from './spans.ts';

// The pipeline bubble of one step, measured: the fraction of stage-time the stages sat idle between
// the step's first forward and its last backward, on the common clock:
//   bubble = 1 - sum over stages of (forward + backward time) / (P x makespan)
// With equal stages and free communication this is (P - 1) / (M + P - 1) for GPipe and 1F1B; slow
// links and uneven stages add to it. The optimizer (after the flush) is left out, as in the theory.

/** Spans of one step of one pipeline replica (any peers, common clock) -> the idle fraction, or null. */
export function pipelineBubble(
  spans: readonly Pick<Span, 'peerId' | 'kind' | 'startMs' | 'durMs'>[],
  stages: number,
): number | null {
  let start = Infinity;
  let end = -Infinity;
  let busy = 0;
  for (const s of spans) {
    if (s.kind !== 'forward' && s.kind !== 'backward') continue;
    start = Math.min(start, s.startMs);
    end = Math.max(end, s.startMs + s.durMs);
    busy += s.durMs;
  }
  const makespan = end - start;
  if (!(makespan > 0) || stages < 1) return null;
  return Math.min(1, Math.max(0, 1 - busy / (stages * makespan)));
}
