import type { ChromeTrace, ChromeTraceEvent, Lane } from '@peertrain/protocol';
import type { Span } from './spans.ts';

// Spans -> Chrome trace event format (opens in Perfetto and chrome://tracing): one process per peer,
// one thread per lane, complete events ('X') with ts and dur in microseconds on the common clock.
// The format's shape and its parser live in protocol (packages/protocol/src/trace.ts): it travels.

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
      if (s.chunk !== undefined) args.chunk = s.chunk;
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
