import { z } from 'zod';
import { parseWith } from './messages.ts';

// Chrome trace event format (opens in Perfetto and chrome://tracing): one process per peer, one
// thread per lane, complete events ('X') with ts and dur in microseconds on the common clock, and
// metadata events ('M') that name processes and threads.
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
// The shape lives here, beside the other wire schemas, because it travels: the coordinator emits it
// in its `trace` event and the CLI writes it to disk. Telemetry's toChromeTrace writes it.

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

// zod returns keys in schema order: name, ph, pid, tid, ts, dur, cat, args is the order trace files
// written by the CLI (from a parsed `trace` event) have always had.
const traceArgs = z.record(z.string(), z.union([z.string(), z.number()])); // finite numbers only
const ids = { pid: z.number().int(), tid: z.number().int() };
const tail = { cat: z.string().exactOptional(), args: traceArgs.exactOptional() };

/** One event; an 'M' event's ts and dur, if any, are dropped (they mean nothing there). */
const ChromeTraceEventSchema = z.discriminatedUnion('ph', [
  z.object({ name: z.string(), ph: z.literal('X'), ...ids, ts: z.number(), dur: z.number().min(0), ...tail }),
  z.object({ name: z.string(), ph: z.literal('M'), ...ids, ...tail }),
]);

export const ChromeTraceSchema: z.ZodType<ChromeTrace> = z.object({
  traceEvents: z.array(ChromeTraceEventSchema),
  // The unit of the viewer's display only; what we write is always ms.
  displayTimeUnit: z.literal('ms').catch('ms'),
});

/**
 * unknown in, typed out: checks a parsed trace file (what telemetry's toChromeTrace writes). Throws
 * ProtocolError('bad-message') naming the first bad field.
 */
export const parseChromeTrace = (v: unknown): ChromeTrace => parseWith(ChromeTraceSchema, v, 'chrome trace');
