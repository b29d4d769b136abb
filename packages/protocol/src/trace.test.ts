import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.ts';
import { parseChromeTrace } from './trace.ts';

describe('parseChromeTrace', () => {
  it('refuses malformed traces with ProtocolError', () => {
    const bad: unknown[] = [
      null,
      { traceEvents: 'no' },
      { traceEvents: [{ name: 'x', ph: 'X', pid: 1, tid: 1, dur: 1 }] }, // no ts
      { traceEvents: [{ name: 'x', ph: 'X', pid: 1, tid: 1, ts: 0, dur: -1 }] },
      { traceEvents: [{ name: 'x', ph: 'B', pid: 1, tid: 1, ts: 0 }] },
      { traceEvents: [{ name: 'x', ph: 'M', pid: 1.5, tid: 1 }] },
      { traceEvents: [{ name: 'x', ph: 'M', pid: 1, tid: 1, args: { a: {} } }] },
    ];
    for (const b of bad) expect(() => parseChromeTrace(b)).toThrow(ProtocolError);
  });

  it('keeps what toChromeTrace writes and drops what an M event does not use', () => {
    const trace = {
      traceEvents: [
        { name: 'process_name', ph: 'M', pid: 1, tid: 0, ts: 5, args: { name: 'w0' } },
        { name: 'forward 0', cat: 'compute', ph: 'X', pid: 1, tid: 1, ts: 0, dur: 1.5, args: { step: 0 } },
      ],
      displayTimeUnit: 'ns',
    };
    expect(parseChromeTrace(trace)).toEqual({
      traceEvents: [
        { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'w0' } },
        { name: 'forward 0', cat: 'compute', ph: 'X', pid: 1, tid: 1, ts: 0, dur: 1.5, args: { step: 0 } },
      ],
      displayTimeUnit: 'ms',
    });
  });
});

describe('parseChromeTrace key order', () => {
  it('returns keys in one fixed order (name, ph, pid, tid, ts, dur, cat, args), whatever the input order', () => {
    const text = JSON.stringify({
      traceEvents: [
        { name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name: 'compute' } },
        {
          name: 'send 0',
          cat: 'comm',
          ph: 'X',
          pid: 1,
          tid: 2,
          ts: 10,
          dur: 2.5,
          args: { step: 0, bytes: 8 },
        },
      ],
      displayTimeUnit: 'ms',
    });
    const reordered = JSON.stringify({
      displayTimeUnit: 'ms',
      traceEvents: (JSON.parse(text) as { traceEvents: object[] }).traceEvents.map((e) =>
        Object.fromEntries(Object.entries(e).reverse()),
      ),
    });
    const expected = text.replace('"cat":"comm",', '').replace('"dur":2.5,', '"dur":2.5,"cat":"comm",');
    expect(JSON.stringify(parseChromeTrace(JSON.parse(text)))).toBe(expected);
    expect(JSON.stringify(parseChromeTrace(JSON.parse(reordered)))).toBe(expected);
  });
});
