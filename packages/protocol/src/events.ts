import { z } from 'zod';
import { RunConfigSchema, SCHEDULES } from './config.ts';
import { parseWith } from './messages.ts';
import { MODEL_PRESETS } from './presets.ts';
import { ChromeTraceSchema } from './trace.ts';

// What a coordinator emits while it runs a session: progress, evaluations, the trace, the trained
// parameters, and at the end the run report (what `peertrain train --report` writes) or an error.
// The dashboard page hands these to the CLI (`window.peertrainEmit(event)`); the harness parses them
// with these schemas, and the types below are the coordinator's (its onEvent, its RunReport).

/** A number, NaN and infinities included: a diverged loss is data, not a malformed event. */
const anyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');
const count = z.number().int().min(0);
/** An error as a report lists it (the wire form's name and message; other fields are dropped). */
const ReportErrorSchema = z.object({ name: z.string(), message: z.string() });

export const PipelineReportSchema = z.object({
  schedule: z.enum(SCHEDULES),
  stages: count,
  replicas: count,
  microBatches: count,
  recompute: z.boolean(),
  /** Codec of the tensors that crossed stages (--activation-compress). */
  activationCompress: z.enum(['none', 'fp16', 'int8']).exactOptional(),
  /** Bytes the stages sent each other per step (every replica; from the workers' send spans). */
  bytesBetweenStagesPerStep: anyNumber.exactOptional(),
  /** Median measured bubble over the steps after the first few (warm-up). */
  bubbleMeasured: anyNumber,
  bubbleTheory: anyNumber,
  predictedStepMs: anyNumber.nullable(),
  perStage: z.array(
    z.object({
      stage: count,
      /** First and last layer, inclusive (as --partition writes them: "0-2" is [0, 2]). */
      layers: z.tuple([z.number().int(), z.number().int()]),
      layerNames: z.array(z.string()),
      parameterBytes: count,
      /** Most activation bytes held at once (replica 0's peer), with this run's recompute setting. */
      peakActivationBytes: count,
      /** The same without recomputation (what forward would have kept). */
      peakActivationBytesNoRecompute: count,
      peerId: z.string(),
    }),
  ),
});
export type PipelineReport = z.infer<typeof PipelineReportSchema>;

/** The JSON report of a finished run (what `peertrain train --report` writes). */
export const RunReportSchema = z.object({
  config: RunConfigSchema,
  finalLoss: anyNumber,
  testAccuracy: anyNumber,
  wallMs: anyNumber,
  stepMsMedian: anyNumber,
  computeMsMedian: anyNumber,
  commMsMedian: anyNumber,
  samplesPerSec: anyNumber,
  bytesSent: anyNumber,
  workers: z.array(
    z.object({
      peerId: z.string(),
      rank: count,
      role: z.string(),
      backend: z.string(),
      gflops: anyNumber,
      bytesSent: anyNumber,
      framesRefused: count,
      /** The WebGPU adapter's info and limits, where the worker has one. */
      adapter: z.record(z.string(), z.union([z.string(), anyNumber, z.boolean()])).exactOptional(),
    }),
  ),
  loss: z.array(z.object({ step: count, loss: anyNumber })),
  evals: z.array(z.object({ step: count, accuracy: anyNumber })),
  // errors before the optional fields: zod returns keys in schema order, the order reports have had.
  errors: z.array(ReportErrorSchema),
  reference: z
    .object({ maxAbsDiff: anyNumber, maxRelDiff: anyNumber, referenceLoss: anyNumber })
    .exactOptional(),
  pipeline: PipelineReportSchema.exactOptional(),
});
export type RunReport = z.infer<typeof RunReportSchema>;

export const CoordinatorEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('log'), message: z.string() }),
  z.object({
    type: z.literal('progress'),
    step: count,
    totalSteps: count,
    loss: anyNumber,
    samplesPerSec: anyNumber,
  }),
  z.object({ type: z.literal('eval'), step: count, accuracy: anyNumber }),
  z.object({ type: z.literal('done'), report: RunReportSchema }),
  /** Every span of the run as a Chrome trace; emitted once as the run ends (before done or error). */
  z.object({ type: z.literal('trace'), trace: ChromeTraceSchema }),
  /** The trained parameters (little-endian float32, the model preset's flat layout, base64); emitted before done. */
  z.object({
    type: z.literal('model'),
    model: z.enum(MODEL_PRESETS),
    paramsBase64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64'),
  }),
  z.object({ type: z.literal('error'), error: ReportErrorSchema }),
]);
export type CoordinatorEvent = z.infer<typeof CoordinatorEventSchema>;

/** unknown in, typed out; throws ProtocolError('bad-message') naming the first bad field. */
export const parseCoordinatorEvent = (v: unknown): CoordinatorEvent =>
  parseWith(CoordinatorEventSchema, v, 'coordinator event');
export const parseRunReport = (v: unknown): RunReport => parseWith(RunReportSchema, v, 'run report');
