import { describe, expect, it } from 'vitest';
import type { Span } from './spans.ts';
import { parseChromeTrace } from '@peertrain/protocol';
import { toChromeTrace } from './trace.ts';

// Two workers whose clocks are off the coordinator's by +1000 ms and -250 ms. Both start forward of
// micro-batch 0 at the same true moment (coordinator time 50 ms).
const spans: Span[] = [
  { peerId: 'w0', kind: 'forward', startMs: 1050, durMs: 10, step: 0, microBatch: 0, lane: 'compute' },
  {
    peerId: 'w0',
    kind: 'send',
    startMs: 1060,
    durMs: 2.5,
    step: 0,
    microBatch: 0,
    bytes: 8192,
    lane: 'comm',
  },
  { peerId: 'w1', kind: 'forward', startMs: -200, durMs: 8, step: 0, microBatch: 0, lane: 'compute' },
  { peerId: 'w1', kind: 'recv', startMs: -190.5, durMs: 1, step: 0, bytes: 8192, lane: 'comm' },
  { peerId: 'w1', kind: 'optimizer', startMs: -180, durMs: 0.0015, step: 0, lane: 'compute' },
];
const offsets = { w0: 1000, w1: -250 };

describe('toChromeTrace', () => {
  const trace = toChromeTrace(spans, { peerNames: { w1: 'tab B (wasm)', w0: 'tab A (webgpu)' }, offsets });
  const complete = trace.traceEvents.filter((e) => e.ph === 'X');
  const metadata = trace.traceEvents.filter((e) => e.ph === 'M');

  it('validates: every X event has ts, dur, pid and tid, and survives JSON', () => {
    expect(complete).toHaveLength(spans.length);
    for (const e of complete) {
      expect(Number.isFinite(e.ts)).toBe(true);
      expect(e.dur).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(e.pid) && e.pid > 0).toBe(true);
      expect([1, 2]).toContain(e.tid);
    }
    expect(parseChromeTrace(JSON.parse(JSON.stringify(trace)))).toEqual(trace);
  });

  it('puts every peer on the common clock, in microseconds', () => {
    const forwards = complete.filter((e) => e.name === 'forward 0');
    expect(forwards.map((e) => e.ts)).toEqual([0, 0]);
    expect(forwards.map((e) => e.dur).sort()).toEqual([10_000, 8_000].sort());
    const send = complete.find((e) => e.name === 'send 0');
    expect(send).toMatchObject({ ts: 10_000, dur: 2_500, args: { step: 0, microBatch: 0, bytes: 8192 } });
    expect(complete.find((e) => e.name === 'optimizer')?.dur).toBe(1.5);
    const ts = complete.map((e) => e.ts ?? 0);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
  });

  it("keeps an interleaved op's chunk in its args", () => {
    const chunked = toChromeTrace([{ ...spans[0]!, chunk: 1 }], { offsets });
    expect(chunked.traceEvents.find((e) => e.ph === 'X')?.args).toEqual({ step: 0, microBatch: 0, chunk: 1 });
  });

  it('names one process per peer (named peers first) with compute and comm threads', () => {
    const processes = metadata.filter((e) => e.name === 'process_name').map((e) => [e.pid, e.args?.name]);
    expect(processes).toEqual([
      [1, 'tab B (wasm)'],
      [2, 'tab A (webgpu)'],
    ]);
    const threads = metadata
      .filter((e) => e.name === 'thread_name' && e.pid === 1)
      .map((e) => [e.tid, e.args?.name]);
    expect(threads).toEqual([
      [1, 'compute'],
      [2, 'communication'],
    ]);
    expect(complete.find((e) => e.name === 'recv')).toMatchObject({ pid: 1, tid: 2 });
  });

  it('handles no spans and unknown peers without offsets', () => {
    expect(toChromeTrace([]).traceEvents).toEqual([]);
    const one = toChromeTrace([{ ...spans[0]!, peerId: 'w9' }], { originMs: 1000 });
    expect(one.traceEvents.find((e) => e.ph === 'X')).toMatchObject({ ts: 50_000, pid: 1 });
  });
});
