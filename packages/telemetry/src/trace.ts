import { ProtocolError } from '@peertrain/protocol';
import type { Lane } from '@peertrain/protocol';
import type { Span } from './spans.ts';

// Chrome trace event format (opens in Perfetto and chrome://tracing): one process per peer, one
// thread per lane, complete events ('X') with ts and dur in microseconds on the common clock.
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

export interface ChromeTraceEvent {
  name: string;
  /** 'X' complete event, 'M' metadata. */
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  /** Start, µs on the common clock ('X' only). */
  ts?: number;
  /** Duration, µs ('X' only). */
  dur?: number;
  cat?: string;
  args?: Record<string, string | number>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
}

export interface TraceOptions {
  /** Display name per peer id (default: the id). Peers named here come first, in this order. */
  peerNames?: Readonly<Record<string, string>>;
  /** Each peer's clock minus the common clock, ms (ClockSync offsets); missing peers: 0. */
  offsets?: Readonly<Record<string, number>>;
  /** Common-clock time shown as 0, ms (default: the earliest span's start). */
  originMs?: number;
}

const LANE_TID: Record<Lane, number> = { compute: 1, comm: 2 };
const LANE_NAME: Record<Lane, string> = { compute: 'compute', comm: 'communication' };

/** Spans of every peer -> one Chrome trace, all peers on the common clock. */
export function toChromeTrace(spans: readonly Span[], opts: TraceOptions = {}): ChromeTrace {
  const names = opts.peerNames ?? {};
  const offsets = opts.offsets ?? {};
  const peers = [...Object.keys(names)];
  for (const s of spans) if (!peers.includes(s.peerId)) peers.push(s.peerId);
  const pidOf = new Map(peers.map((p, i) => [p, i + 1]));

  const common = (s: Span): number => s.startMs - (offsets[s.peerId] ?? 0);
  const origin = opts.originMs ?? spans.reduce((min, s) => Math.min(min, common(s)), Infinity);
  const base = Number.isFinite(origin) ? origin : 0;

  const meta: ChromeTraceEvent[] = [];
  for (const [peer, pid] of pidOf) {
    meta.push(
      { name: 'process_name', ph: 'M', pid, tid: 0, args: { name: names[peer] ?? peer } },
      { name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } },
    );
    for (const lane of ['compute', 'comm'] as const) {
      const tid = LANE_TID[lane];
      meta.push(
        { name: 'thread_name', ph: 'M', pid, tid, args: { name: LANE_NAME[lane] } },
        { name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } },
      );
    }
  }

  const complete = spans
    .map((s): ChromeTraceEvent => {
      const args: Record<string, number> = { step: s.step };
      if (s.microBatch !== undefined) args.microBatch = s.microBatch;
      if (s.bytes !== undefined) args.bytes = s.bytes;
      return {
        name: s.microBatch === undefined ? s.kind : `${s.kind} ${s.microBatch}`,
        cat: s.lane,
        ph: 'X',
        pid: pidOf.get(s.peerId) ?? 0,
        tid: LANE_TID[s.lane],
        ts: micros(common(s) - base),
        dur: micros(Math.max(0, s.durMs)),
        args,
      };
    })
    .sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));

  return { traceEvents: [...meta, ...complete], displayTimeUnit: 'ms' };
}

/** ms -> µs, kept to nanosecond precision (stable JSON, no float noise). */
function micros(ms: number): number {
  return Math.round(ms * 1e6) / 1e3;
}

/**
 * unknown in, typed out: checks a parsed trace file (what toChromeTrace writes). Throws
 * ProtocolError('bad-message') naming the first bad event.
 */
export function parseChromeTrace(value: unknown): ChromeTrace {
  const fail = (why: string): never => {
    throw new ProtocolError('bad-message', `chrome trace: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return fail('not an object');
  const events: unknown = (value as { traceEvents?: unknown }).traceEvents;
  if (!Array.isArray(events)) return fail('traceEvents is not an array');
  const out: ChromeTraceEvent[] = [];
  for (const [i, e] of (events as unknown[]).entries()) {
    if (typeof e !== 'object' || e === null) return fail(`event ${i} is not an object`);
    const ev = e as Record<string, unknown>;
    const { name, ph, pid, tid, ts, dur, cat, args } = ev;
    if (typeof name !== 'string') return fail(`event ${i}: name is not a string`);
    if (ph !== 'X' && ph !== 'M') return fail(`event ${i}: ph ${String(ph)} is not X or M`);
    if (!isInt(pid) || !isInt(tid)) return fail(`event ${i}: pid and tid must be integers`);
    const event: ChromeTraceEvent = { name, ph, pid, tid };
    if (ph === 'X') {
      if (!isFiniteNumber(ts)) return fail(`event ${i}: ts is not a finite number`);
      if (!isFiniteNumber(dur) || dur < 0) return fail(`event ${i}: dur is not a non-negative number`);
      event.ts = ts;
      event.dur = dur;
    }
    if (cat !== undefined) {
      if (typeof cat !== 'string') return fail(`event ${i}: cat is not a string`);
      event.cat = cat;
    }
    if (args !== undefined) {
      if (typeof args !== 'object' || args === null) return fail(`event ${i}: args is not an object`);
      const parsed: Record<string, string | number> = {};
      for (const [k, v] of Object.entries(args)) {
        if (typeof v !== 'string' && !isFiniteNumber(v))
          return fail(`event ${i}: args.${k} is not a string or number`);
        parsed[k] = v;
      }
      event.args = parsed;
    }
    out.push(event);
  }
  return { traceEvents: out, displayTimeUnit: 'ms' };
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
