import type { ToCoordinator, WireSpan } from '@peertrain/protocol';
import { RunningMedian, pipelineBubble, toChromeTrace } from '@peertrain/telemetry';
import type { ChromeTrace } from '@peertrain/protocol';
import type { PeerRecord } from './membership.ts';
import type { PipelineView, StepPoint, TimelineSpan } from './types.ts';

/*
 * Telemetry intake: what workers report about time and work. Spans (shifted onto the coordinator's
 * clock by each peer's ping offset), clock offsets from pongs, per-step metrics, the measured
 * pipeline bubble and the Chrome trace.
 */

export type StepDoneMsg = Extract<ToCoordinator, { type: 'stepDone' }>;
type Pong = Extract<ToCoordinator, { type: 'pong' }>;

/** Steps of spans the live view keeps (a ring: the dashboard's timeline runs for hours). */
export const TIMELINE_STEPS = 12;
/** Spans kept for the trace export; beyond this the oldest go (and the trace says how many). */
export const DEFAULT_TRACE_CAPACITY = 400_000;
/** Steps left out of the measured bubble: the first ones warm up kernels and links. */
const BUBBLE_WARMUP_STEPS = 3;
/** Per-step bubbles the view keeps (the dashboard's sparkline); the median covers every step. */
export const BUBBLE_HISTORY = 300;

/** Every span of the run for the trace, the last TIMELINE_STEPS steps for the view. */
export class SpanIntake {
  private traceSpans: TimelineSpan[] = [];
  private dropped = 0;
  private names: Record<string, string> = {};
  private liveSpans: TimelineSpan[] = [];
  private maxStep = -1;

  constructor(private readonly capacity: number) {}

  /** A new run: no spans (the names stay until the run assigns its peers). */
  reset(): void {
    this.traceSpans = [];
    this.dropped = 0;
    this.liveSpans = [];
    this.maxStep = -1;
  }

  /** Trace track names, by peer id. */
  setNames(names: Record<string, string>): void {
    this.names = names;
  }

  /** One track's name (a spare that took a stage, the coordinator's own track). */
  name(peerId: string, name: string): void {
    this.names = { ...this.names, [peerId]: name };
  }

  get live(): TimelineSpan[] {
    return this.liveSpans;
  }

  /** Spans of `from` on its clock; `offsetMs` = its clock minus ours. */
  add(from: string, offsetMs: number, spans: readonly WireSpan[]): void {
    let maxStep = this.maxStep;
    for (const w of spans) {
      const t: TimelineSpan = {
        peerId: from,
        kind: w.kind,
        startMs: w.startMs - offsetMs,
        durMs: w.durMs,
        step: w.step,
        lane: w.lane,
      };
      if (w.microBatch !== undefined) t.microBatch = w.microBatch;
      if (w.chunk !== undefined) t.chunk = w.chunk;
      if (w.bytes !== undefined) t.bytes = w.bytes;
      if (w.peer !== undefined) t.peer = w.peer;
      this.traceSpans.push(t);
      this.liveSpans.push(t);
      maxStep = Math.max(maxStep, w.step);
    }
    // Trimmed to the newest capacity once it holds twice that: one copy per `capacity` spans
    // instead of moving the whole array on every report of a long run.
    if (this.traceSpans.length > 2 * this.capacity) {
      const drop = this.traceSpans.length - this.capacity;
      this.traceSpans = this.traceSpans.slice(drop);
      this.dropped += drop;
    }
    if (maxStep > this.maxStep) {
      this.maxStep = maxStep;
      this.liveSpans = this.liveSpans.filter((sp) => sp.step > maxStep - TIMELINE_STEPS);
    }
  }

  trace(): ChromeTrace {
    const over = Math.max(0, this.traceSpans.length - this.capacity);
    const spans = over > 0 ? this.traceSpans.slice(over) : this.traceSpans;
    const t = toChromeTrace(spans, { peerNames: this.names });
    const dropped = this.dropped + over;
    if (dropped > 0) {
      t.traceEvents.push({ name: 'dropped_spans', ph: 'M', pid: 0, tid: 0, args: { count: dropped } });
    }
    return t;
  }
}

/** NTP-style clock offset and RTT; the minimum-RTT sample of the window wins (telemetry's ClockSync). */
export function takePong(p: PeerRecord, msg: Pong, t3: number): void {
  p.clock.add({ t0: msg.t0, t1: msg.tWorker, t3 });
  p.rttMs = p.clock.rttMs;
  p.clockOffsetMs = p.clock.offsetMs;
  if (msg.memory) p.memory = { ...msg.memory };
}

/**
 * The measured bubble of a pipeline: per step, `pipelineBubble` over one replica's spans; the median
 * over the steps after the warm-up (over the warm-up steps until there are any), kept as it goes:
 * O(log n) a step however long the run.
 */
export class BubbleMeter {
  private readonly median = new RunningMedian();
  private readonly warm: number[] = [];

  constructor(
    private readonly group: ReadonlySet<string>,
    private readonly stages: number,
    private readonly history: number,
  ) {}

  /** The view's pipeline block with `step`'s bubble added (unchanged when the spans give none). */
  record(step: number, live: readonly TimelineSpan[], pv: PipelineView): PipelineView {
    const bubble = pipelineBubble(
      live.filter((sp) => sp.step === step && this.group.has(sp.peerId)),
      this.stages,
    );
    if (bubble === null) return pv;
    if (step >= BUBBLE_WARMUP_STEPS) this.median.add(bubble);
    else this.warm.push(bubble);
    const kept = pv.bubbles.slice(Math.max(0, pv.bubbles.length - this.history + 1));
    return {
      ...pv,
      bubbles: [...kept, { step, bubble }],
      bubbleMeasured: this.median.count > 0 ? this.median.median : median(this.warm),
    };
  }
}

/** One finished step: when the barrier saw its last report, and the reports in arrival order. */
export interface StepRecord {
  step: number;
  /** Coordinator ms since training started. */
  doneAtMs: number;
  reports: { rank: number; msg: StepDoneMsg }[];
}

/**
 * A step's metrics from its reports and the previous step's (for the wall time and the bytes moved:
 * stepDone carries each rank's running total of bytes sent). `globalBatch` samples per step.
 */
export function stepPoint(rec: StepRecord, prev: StepRecord | undefined, globalBatch: number): StepPoint {
  const done = rec.reports.map((r) => r.msg);
  const ranks = Math.max(0, ...rec.reports.map((r) => r.rank + 1));
  const sentBefore = (rank: number): number => prev?.reports.find((r) => r.rank === rank)?.msg.bytesSent ?? 0;
  let bytes = 0;
  const computeMsByRank = Array.from({ length: ranks }, (_, rank) => {
    const d = rec.reports.find((r) => r.rank === rank)?.msg;
    bytes += Math.max(0, (d?.bytesSent ?? 0) - sentBefore(rank));
    return d?.computeMs ?? 0;
  });
  return {
    step: rec.step,
    loss: mean(done.flatMap((d) => (d.loss === undefined ? [] : [d.loss]))),
    tMs: rec.doneAtMs,
    samplesPerSec: (globalBatch * (rec.step + 1)) / (rec.doneAtMs / 1000),
    computeMs: mean(done.map((d) => d.computeMs)),
    commMs: mean(done.map((d) => d.commMs)),
    stepMs: ranksStepMs(done) ?? rec.doneAtMs - (prev?.doneAtMs ?? 0),
    bytes,
    computeMsByRank,
  };
}

/**
 * The ranks' mean wall time for a step, from their own clocks (computeMs + commMs + idleMs: a
 * rank's steps tile its training time); null unless every report has idleMs (a rank's first step,
 * older workers), where the arrival times must do. Arrivals alone misread held reports (a DiLoCo
 * worker sends a round's reports together, so all but one step would seem to take no time).
 */
function ranksStepMs(done: readonly StepDoneMsg[]): number | null {
  if (done.length === 0 || done.some((d) => d.idleMs === undefined)) return null;
  return mean(done.map((d) => d.computeMs + d.commMs + (d.idleMs ?? 0)));
}

/**
 * Compute utilization per rank, kept as steps pass the barrier: the rank's summed computeMs over
 * its summed wall time (computeMs + commMs + idleMs, as each stepDone splits it). With idleMs (the
 * time between the rank's previous step and this one) the steps tile the rank's training time, so
 * waits for grants, evaluations and reports between steps count against it. O(ranks) a step.
 */
export class UtilizationSums {
  private readonly compute: number[];
  private readonly wall: number[];

  constructor(ranks: number) {
    this.compute = new Array<number>(ranks).fill(0);
    this.wall = new Array<number>(ranks).fill(0);
  }

  add(rec: StepRecord): void {
    for (const { rank, msg } of rec.reports) {
      if (rank >= this.compute.length) continue;
      this.compute[rank]! += msg.computeMs;
      this.wall[rank]! += msg.computeMs + msg.commMs + (msg.idleMs ?? 0);
    }
  }

  /** By rank; NaN for a rank with no step time yet. */
  byRank(): number[] {
    return this.compute.map((c, rank) => (this.wall[rank]! > 0 ? c / this.wall[rank]! : NaN));
  }

  /** The mean over ranks. */
  mean(): number {
    return mean(this.byRank());
  }
}

/** Spans of the comm lane that wait on a peer rather than move data. */
const WAIT_KINDS: ReadonlySet<WireSpan['kind']> = new Set(['recv', 'wait']);

/**
 * What a step kept a peer busy with, from its spans (wall time per kind of work, overlaps counted
 * once): computing (the compute lane), sending (the comm lane moving data: sends, all-reduce
 * phases) or waiting (receives and waits on a peer: a pipeline stage idle until its neighbour's
 * activations or gradients arrive). The largest wins; ties go to computing. Without spans, the
 * step's computeMs / commMs decide between computing and sending.
 */
export function activityOf(msg: StepDoneMsg): 'computing' | 'sending' | 'waiting' {
  const spans = msg.spans ?? [];
  if (spans.length === 0) return msg.commMs > msg.computeMs ? 'sending' : 'computing';
  const busy = (keep: (s: WireSpan) => boolean): number => {
    const iv = spans
      .filter(keep)
      .map((s) => [s.startMs, s.startMs + s.durMs] as const)
      .sort((a, b) => a[0] - b[0]);
    let total = 0;
    let end = -Infinity;
    for (const [a, b] of iv) {
      if (b <= end) continue;
      total += b - Math.max(a, end);
      end = b;
    }
    return total;
  };
  const computing = busy((s) => s.lane === 'compute');
  const sending = busy((s) => s.lane === 'comm' && !WAIT_KINDS.has(s.kind));
  const waiting = busy((s) => s.lane === 'comm' && WAIT_KINDS.has(s.kind));
  if (computing >= sending && computing >= waiting) return 'computing';
  return sending >= waiting ? 'sending' : 'waiting';
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

// TODO(helpers): one median for all packages (another change unifies the helpers); moved here, not copied.
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
