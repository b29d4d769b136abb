import type { Span } from './spans.ts';

// How much of a worker's communication hid behind its computation, from its spans (one worker, one
// clock): comm = the union of its comm-lane spans, hidden = the part of that union during which a
// compute-lane span was open, exposed = comm - hidden (what the step waited on the wire). Overlapped
// data parallelism exists to shrink `exposed`; the lanes themselves overlap by design.

export interface CommOverlap {
  /** Wall time during which at least one comm-lane span was open, ms. */
  commMs: number;
  /** The part of commMs during which a compute-lane span was open too. */
  hiddenMs: number;
  /** commMs - hiddenMs: communication not hidden behind computation. */
  exposedMs: number;
}

type Interval = readonly [start: number, end: number];

/** Sorted, disjoint union of the spans' [start, end). */
function union(spans: readonly Pick<Span, 'startMs' | 'durMs'>[]): Interval[] {
  const sorted = spans
    .filter((s) => s.durMs > 0)
    .map((s): Interval => [s.startMs, s.startMs + s.durMs])
    .sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** Total length of the intersection of two sorted, disjoint interval lists. */
function intersection(a: readonly Interval[], b: readonly Interval[]): number {
  let total = 0;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [a0, a1] = a[i]!;
    const [b0, b1] = b[j]!;
    total += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
    if (a1 < b1) i++;
    else j++;
  }
  return total;
}

/** Communication hidden behind and exposed beside computation, for the spans of one worker. */
export function commOverlap(spans: readonly Pick<Span, 'lane' | 'startMs' | 'durMs'>[]): CommOverlap {
  const comm = union(spans.filter((s) => s.lane === 'comm'));
  const compute = union(spans.filter((s) => s.lane === 'compute'));
  const commMs = comm.reduce((a, [s, e]) => a + e - s, 0);
  const hiddenMs = intersection(comm, compute);
  return { commMs, hiddenMs, exposedMs: Math.max(0, commMs - hiddenMs) };
}
