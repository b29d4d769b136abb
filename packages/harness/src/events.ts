import { ConfigError, ProtocolError, parseRunConfig } from '@peertrain/protocol';
import type { WireError } from '@peertrain/protocol';
import type { CoordinatorEvent, PipelineReport, RunReport, TargetReport } from '@peertrain/coordinator';
import { parseChromeTrace } from '@peertrain/telemetry';

// Validation of what the dashboard page hands to `window.peertrainEmit(event)`: unknown in,
// CoordinatorEvent out, ProtocolError('bad-message') on anything else.

type Obj = Record<string, unknown>;

function bad(path: string, what: string): never {
  throw new ProtocolError('bad-message', `event ${path}: ${what}`);
}
function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, 'expected an object');
  return v as Obj;
}
/** A number; NaN and infinities allowed (a diverged loss is data, not a malformed event). */
function num(o: Obj, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number') bad(`${path}.${key}`, 'expected a number');
  return v;
}
function int(o: Obj, key: string, path: string): number {
  const v = num(o, key, path);
  if (!Number.isInteger(v) || v < 0) bad(`${path}.${key}`, 'expected a non-negative integer');
  return v;
}
function str(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== 'string') bad(`${path}.${key}`, 'expected a string');
  return v;
}
function arr(o: Obj, key: string, path: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) bad(`${path}.${key}`, 'expected an array');
  return v;
}

function parseWireError(v: unknown, path: string): WireError {
  const o = obj(v, path);
  return { name: str(o, 'name', path), message: str(o, 'message', path) };
}

function parseAdapter(v: unknown, path: string): Record<string, string | number | boolean> {
  const o = obj(v, path);
  const out: Record<string, string | number | boolean> = {};
  for (const [k, x] of Object.entries(o)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean')
      bad(`${path}.${k}`, 'expected a scalar');
    out[k] = x;
  }
  return out;
}

/** Validates a RunReport (the `report` of a `done` event). */
export function parseRunReport(v: unknown, path = 'report'): RunReport {
  const o = obj(v, path);
  let config;
  try {
    config = parseRunConfig(o.config);
  } catch (err) {
    bad(`${path}.config`, err instanceof ConfigError ? err.message : String(err));
  }
  const workers = arr(o, 'workers', path).map((w, i) => {
    const p = `${path}.workers[${i}]`;
    const wo = obj(w, p);
    const worker: RunReport['workers'][number] = {
      peerId: str(wo, 'peerId', p),
      rank: int(wo, 'rank', p),
      role: str(wo, 'role', p),
      backend: str(wo, 'backend', p),
      gflops: num(wo, 'gflops', p),
      bytesSent: num(wo, 'bytesSent', p),
      framesRefused: int(wo, 'framesRefused', p),
    };
    if (wo.adapter !== undefined) worker.adapter = parseAdapter(wo.adapter, `${p}.adapter`);
    if (wo.computeUtilization !== undefined) worker.computeUtilization = num(wo, 'computeUtilization', p);
    return worker;
  });
  const report: RunReport = {
    config,
    finalLoss: num(o, 'finalLoss', path),
    testAccuracy: num(o, 'testAccuracy', path),
    ...(o.target !== undefined ? { target: parseTarget(o.target, `${path}.target`) } : {}),
    wallMs: num(o, 'wallMs', path),
    stepMsMedian: num(o, 'stepMsMedian', path),
    computeMsMedian: num(o, 'computeMsMedian', path),
    commMsMedian: num(o, 'commMsMedian', path),
    samplesPerSec: num(o, 'samplesPerSec', path),
    bytesSent: num(o, 'bytesSent', path),
    ...(o.bytesPerSample !== undefined ? { bytesPerSample: num(o, 'bytesPerSample', path) } : {}),
    ...(o.computeUtilization !== undefined ? { computeUtilization: num(o, 'computeUtilization', path) } : {}),
    workers,
    loss: arr(o, 'loss', path).map((x, i) => {
      const p = obj(x, `${path}.loss[${i}]`);
      return { step: int(p, 'step', `${path}.loss[${i}]`), loss: num(p, 'loss', `${path}.loss[${i}]`) };
    }),
    evals: arr(o, 'evals', path).map((x, i) => {
      const p = obj(x, `${path}.evals[${i}]`);
      return {
        step: int(p, 'step', `${path}.evals[${i}]`),
        accuracy: num(p, 'accuracy', `${path}.evals[${i}]`),
      };
    }),
    errors: arr(o, 'errors', path).map((x, i) => parseWireError(x, `${path}.errors[${i}]`)),
  };
  if (o.reference !== undefined) {
    const r = obj(o.reference, `${path}.reference`);
    const p = `${path}.reference`;
    report.reference = {
      maxAbsDiff: num(r, 'maxAbsDiff', p),
      maxRelDiff: num(r, 'maxRelDiff', p),
      referenceLoss: num(r, 'referenceLoss', p),
    };
  }
  if (o.staleness !== undefined) {
    const p = `${path}.staleness`;
    const st = obj(o.staleness, p);
    report.staleness = { mean: num(st, 'mean', p), max: num(st, 'max', p) };
  }
  if (o.compression !== undefined) {
    const p = `${path}.compression`;
    const c = obj(o.compression, p);
    report.compression = { spec: str(c, 'spec', p) };
    if (c.bytesRatio !== undefined) report.compression.bytesRatio = num(c, 'bytesRatio', p);
  }
  if (o.pipeline !== undefined) report.pipeline = parsePipelineReport(o.pipeline, `${path}.pipeline`);
  return report;
}

/** A number or null (a target not reached has no step, time, samples or bytes). */
function numOrNull(o: Obj, key: string, path: string): number | null {
  return o[key] === null ? null : num(o, key, path);
}

function parseTarget(v: unknown, path: string): TargetReport {
  const o = obj(v, path);
  if (typeof o.reached !== 'boolean') bad(`${path}.reached`, 'expected a boolean');
  return {
    accuracy: num(o, 'accuracy', path),
    reached: o.reached,
    step: numOrNull(o, 'step', path),
    timeToTargetMs: numOrNull(o, 'timeToTargetMs', path),
    samplesToTarget: numOrNull(o, 'samplesToTarget', path),
    bytesToTarget: numOrNull(o, 'bytesToTarget', path),
  };
}

const SCHEDULE_KINDS = ['naive', 'gpipe', '1f1b'] as const;
const MODEL_NAMES = ['mlp', 'cnn', 'deepMlp', 'wideMlp'] as const;

function parsePipelineReport(v: unknown, path: string): PipelineReport {
  const o = obj(v, path);
  const schedule = str(o, 'schedule', path);
  if (!(SCHEDULE_KINDS as readonly string[]).includes(schedule)) bad(`${path}.schedule`, 'unknown schedule');
  const predicted = o.predictedStepMs;
  if (predicted !== null && typeof predicted !== 'number')
    bad(`${path}.predictedStepMs`, 'expected a number or null');
  if (typeof o.recompute !== 'boolean') bad(`${path}.recompute`, 'expected a boolean');
  return {
    schedule: schedule as PipelineReport['schedule'],
    stages: int(o, 'stages', path),
    replicas: int(o, 'replicas', path),
    microBatches: int(o, 'microBatches', path),
    recompute: o.recompute,
    bubbleMeasured: num(o, 'bubbleMeasured', path),
    bubbleTheory: num(o, 'bubbleTheory', path),
    predictedStepMs: predicted,
    perStage: arr(o, 'perStage', path).map((x, i) => {
      const p = `${path}.perStage[${i}]`;
      const so = obj(x, p);
      const layers = arr(so, 'layers', p);
      if (layers.length !== 2 || !layers.every((n) => Number.isInteger(n)))
        bad(`${p}.layers`, 'expected [first, last]');
      return {
        stage: int(so, 'stage', p),
        layers: [layers[0] as number, layers[1] as number],
        layerNames: arr(so, 'layerNames', p).map((n, j) => {
          if (typeof n !== 'string') bad(`${p}.layerNames[${j}]`, 'expected a string');
          return n;
        }),
        parameterBytes: int(so, 'parameterBytes', p),
        peakActivationBytes: int(so, 'peakActivationBytes', p),
        peakActivationBytesNoRecompute: int(so, 'peakActivationBytesNoRecompute', p),
        peerId: str(so, 'peerId', p),
      };
    }),
  };
}

/** Validates one event from the dashboard page. */
export function parseCoordinatorEvent(v: unknown): CoordinatorEvent {
  const o = obj(v, '');
  const type = o.type;
  switch (type) {
    case 'log':
      return { type, message: str(o, 'message', 'log') };
    case 'progress':
      return {
        type,
        step: int(o, 'step', type),
        totalSteps: int(o, 'totalSteps', type),
        loss: num(o, 'loss', type),
        samplesPerSec: num(o, 'samplesPerSec', type),
        ...(o.computeUtilization !== undefined
          ? { computeUtilization: num(o, 'computeUtilization', type) }
          : {}),
      };
    case 'eval':
      return { type, step: int(o, 'step', type), accuracy: num(o, 'accuracy', type) };
    case 'done':
      return { type, report: parseRunReport(o.report) };
    case 'trace':
      return { type, trace: parseChromeTrace(o.trace) };
    case 'model': {
      const model = str(o, 'model', type);
      if (!(MODEL_NAMES as readonly string[]).includes(model)) bad('.model', `unknown model ${model}`);
      const paramsBase64 = str(o, 'paramsBase64', type);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(paramsBase64)) bad('.paramsBase64', 'not base64');
      return { type, model: model as (typeof MODEL_NAMES)[number], paramsBase64 };
    }
    case 'error':
      return { type, error: parseWireError(o.error, 'error.error') };
    default:
      return bad('.type', `unknown type ${JSON.stringify(type)}`);
  }
}
