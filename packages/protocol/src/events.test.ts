import { describe, expect, it } from 'vitest';
import { parseRunConfig } from './config.ts';
import { ProtocolError } from './errors.ts';
import { parseCoordinatorEvent, parseRunReport } from './events.ts';

function sampleReport(): Record<string, unknown> {
  return {
    config: parseRunConfig({ workers: 2, steps: 3 }),
    finalLoss: 0.5,
    testAccuracy: 0.9,
    wallMs: 1000,
    stepMsMedian: 10,
    computeMsMedian: 7,
    commMsMedian: 3,
    samplesPerSec: 640,
    bytesSent: 1234,
    workers: [
      { peerId: 'a', rank: 0, role: 'worker', backend: 'wasm', gflops: 15, bytesSent: 600, framesRefused: 0 },
      {
        peerId: 'b',
        rank: 1,
        role: 'worker+server',
        backend: 'webgpu',
        gflops: 0.3,
        bytesSent: 634,
        framesRefused: 2,
        adapter: { vendor: 'google', isFallbackAdapter: true, maxStorageBuffersPerShaderStage: 10 },
      },
    ],
    loss: [{ step: 1, loss: 2.3 }],
    evals: [{ step: 3, accuracy: 0.9 }],
    reference: { maxAbsDiff: 1e-7, maxRelDiff: 2e-6, referenceLoss: 0.5 },
    errors: [{ name: 'ProtocolError', message: 'bad-magic: x' }],
  };
}

describe('parseCoordinatorEvent', () => {
  it('accepts every event type and returns only the known fields', () => {
    expect(parseCoordinatorEvent({ type: 'log', message: 'hi', extra: 1 })).toEqual({
      type: 'log',
      message: 'hi',
    });
    expect(
      parseCoordinatorEvent({ type: 'progress', step: 3, totalSteps: 10, loss: NaN, samplesPerSec: 100 }),
    ).toMatchObject({ type: 'progress', step: 3, totalSteps: 10, samplesPerSec: 100 });
    const util = {
      type: 'progress',
      step: 3,
      totalSteps: 10,
      loss: 1,
      samplesPerSec: 1,
      computeUtilization: 0.4,
    };
    expect(parseCoordinatorEvent(util)).toMatchObject({ computeUtilization: 0.4 });
    expect(parseCoordinatorEvent({ type: 'eval', step: 3, accuracy: 0.5 })).toEqual({
      type: 'eval',
      step: 3,
      accuracy: 0.5,
    });
    expect(parseCoordinatorEvent({ type: 'error', error: { name: 'PeerLostError', message: 'x' } })).toEqual({
      type: 'error',
      error: { name: 'PeerLostError', message: 'x' },
    });
    const done = parseCoordinatorEvent({ type: 'done', report: sampleReport() });
    expect(done.type === 'done' && done.report.workers[1]?.adapter?.vendor).toBe('google');
  });

  it.each([
    [null, /\(root\)/],
    [[], /\(root\)/],
    [{ type: 'nope' }, /type/],
    [{ type: 'log' }, /message/],
    [{ type: 'progress', step: -1, totalSteps: 2, loss: 1, samplesPerSec: 1 }, /step/],
    [{ type: 'progress', step: 1.5, totalSteps: 2, loss: 1, samplesPerSec: 1 }, /step/],
    [{ type: 'eval', step: 1, accuracy: '0.5' }, /accuracy: expected a number/],
    [{ type: 'error', error: 'boom' }, /error/],
    [{ type: 'model', model: 'gpt', paramsBase64: '' }, /model/],
    [{ type: 'model', model: 'mlp', paramsBase64: 'a b' }, /paramsBase64: not base64/],
    [{ type: 'trace', trace: { traceEvents: [{ name: 'x', ph: 'B', pid: 1, tid: 1 }] } }, /trace/],
  ])('refuses %j with a ProtocolError', (input, message) => {
    expect(() => parseCoordinatorEvent(input)).toThrowError(message);
    expect(() => parseCoordinatorEvent(input)).toThrowError(ProtocolError);
  });

  it("keeps NaN and infinite numbers (a diverged loss is data) and drops an error event's extra fields", () => {
    const p = parseCoordinatorEvent({
      type: 'progress',
      step: 1,
      totalSteps: 2,
      loss: NaN,
      samplesPerSec: Infinity,
    });
    expect(p.type === 'progress' && Number.isNaN(p.loss) && p.samplesPerSec).toBe(Infinity);
    expect(
      parseCoordinatorEvent({ type: 'error', error: { name: 'PeerLostError', message: 'x', peerId: 'w1' } }),
    ).toEqual({ type: 'error', error: { name: 'PeerLostError', message: 'x' } });
  });
});

describe('parseRunReport', () => {
  it('validates the config with the protocol schema', () => {
    const report = sampleReport();
    report.config = { workers: 0 };
    expect(() => parseRunReport(report)).toThrowError(/run report: config.workers/);
  });

  it('names the path of a bad nested field', () => {
    const report = sampleReport();
    (report.workers as Record<string, unknown>[])[1]!.framesRefused = 'two';
    expect(() => parseRunReport(report)).toThrowError(/workers.1.framesRefused/);
    const r2 = sampleReport();
    r2.workers = [{ ...(sampleReport().workers as object[])[0], adapter: { nested: {} } }];
    expect(() => parseRunReport(r2)).toThrowError(/workers.0.adapter.nested/);
  });

  it('keeps reference only when present', () => {
    const report = sampleReport();
    delete report.reference;
    expect('reference' in parseRunReport(report)).toBe(false);
    expect(parseRunReport(sampleReport()).reference?.maxRelDiff).toBe(2e-6);
  });

  it('passes the target, utilization, bytes per sample, staleness and compression through in order', () => {
    const target = {
      accuracy: 0.9,
      reached: false,
      step: null,
      timeToTargetMs: null,
      samplesToTarget: null,
      bytesToTarget: null,
    };
    const base = sampleReport();
    (base.workers as Record<string, unknown>[])[0]!.computeUtilization = 0.4;
    const full = {
      ...base,
      target,
      bytesPerSample: 12.5,
      computeUtilization: 0.4,
      staleness: { bound: 2, mean: 1.5, max: 3, perWorker: [] },
      compression: { spec: 'int8', bytesRatio: 0.26 },
    };
    const r = parseRunReport(full);
    expect(r.target).toEqual(target);
    expect(r.workers[0]!.computeUtilization).toBe(0.4);
    expect(r.staleness).toEqual({ bound: 2, mean: 1.5, max: 3, perWorker: [] });
    expect(r.compression).toEqual({ spec: 'int8', bytesRatio: 0.26 });
    const keys = Object.keys(r);
    expect(keys.slice(0, 4)).toEqual(['config', 'finalLoss', 'testAccuracy', 'target']);
    expect(keys.indexOf('bytesPerSample')).toBe(keys.indexOf('bytesSent') + 1);
    expect(() => parseRunReport({ ...full, target: { ...target, step: 'x' } })).toThrowError(
      /run report: target.step/,
    );
    // Reports written before these fields parse as before: none of the keys appear.
    expect(Object.keys(parseRunReport(sampleReport()))).not.toContain('computeUtilization');
  });
});

describe('report key order', () => {
  it('is the order reports have always been written in, whatever the input order', () => {
    const input = sampleReport();
    const reversed = Object.fromEntries(Object.entries(input).reverse());
    expect(Object.keys(parseRunReport(reversed))).toEqual([
      'config',
      'finalLoss',
      'testAccuracy',
      'wallMs',
      'stepMsMedian',
      'computeMsMedian',
      'commMsMedian',
      'samplesPerSec',
      'bytesSent',
      'workers',
      'loss',
      'evals',
      'errors',
      'reference',
    ]);
  });
});

describe('staleness report block', () => {
  it('round-trips a ps-async report and refuses a fractional step count', () => {
    const staleness = {
      bound: 2,
      mean: 1.5,
      max: 4,
      perWorker: [{ rank: 0, steps: 3, mean: 1.5, max: 4, samplesPerSec: 900 }],
    };
    expect(parseRunReport({ ...sampleReport(), staleness }).staleness).toEqual(staleness);
    const bad = { ...staleness, perWorker: [{ rank: 0, steps: 1.5, mean: 0, max: 0, samplesPerSec: 1 }] };
    expect(() => parseRunReport({ ...sampleReport(), staleness: bad })).toThrow(ProtocolError);
  });
});
