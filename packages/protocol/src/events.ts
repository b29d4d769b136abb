import { z } from 'zod';
import { CheckpointManifestSchema } from './checkpoint.ts';
import { RunConfigSchema, SCHEDULES } from './config.ts';
import { LinkCountsSchema, parseWith } from './messages.ts';
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
  /** Interleaved: model chunks per peer (absent: 1). */
  virtualStages: count.exactOptional(),
  recompute: z.boolean(),
  /** Codec of the tensors that crossed stages (--activation-compress). */
  activationCompress: z.enum(['none', 'fp16', 'int8']).exactOptional(),
  /** Whether zeros were skipped between stages (config activationSkipZeros). */
  activationSkipZeros: z.boolean().exactOptional(),
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
      /** Interleaved: every chunk the peer holds, in order (layers is the first). */
      chunks: z.array(z.tuple([z.number().int(), z.number().int()])).exactOptional(),
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

/**
 * How the tensors crossed between stages, in words: "float32, zeros skipped", "fp16, every zero
 * sent" (int8 sends every element; a report without the setting predates zero skipping).
 */
export function activationFormat(
  p: Pick<PipelineReport, 'activationCompress' | 'activationSkipZeros'>,
): string {
  const codec = p.activationCompress ?? 'none';
  const zeros = p.activationSkipZeros === true && codec !== 'int8' ? 'zeros skipped' : 'every zero sent';
  return `${codec === 'none' ? 'float32' : codec}, ${zeros}`;
}

/** A run's target accuracy: reached or not, and what it took (null fields when not reached). */
export const TargetReportSchema = z.object({
  accuracy: anyNumber,
  reached: z.boolean(),
  /** Steps done when the evaluation reached it. */
  step: count.nullable(),
  /** From the first step's grant to that evaluation's arrival, coordinator clock. */
  timeToTargetMs: anyNumber.nullable(),
  /** Global samples trained up to that step. */
  samplesToTarget: anyNumber.nullable(),
  /** Bytes sent between peers (all ranks) up to that step. */
  bytesToTarget: anyNumber.nullable(),
});
export type TargetReport = z.infer<typeof TargetReportSchema>;

/**
 * Staleness of the pushes of a ps-async run: server versions applied between the parameters a
 * gradient was computed on and its own application (per step, the largest a worker saw).
 */
export const StalenessReportSchema = z.object({
  /** The configured bound S (own pushes a worker may leave unanswered). */
  bound: count,
  mean: anyNumber,
  max: anyNumber,
  /**
   * Per rank: steps reported, mean and max staleness, and the worker's own samples/s (its samples
   * over the sum of its step times, compute + communication): a slow peer must lower only its own.
   */
  perWorker: z.array(
    z.object({ rank: count, steps: count, mean: anyNumber, max: anyNumber, samplesPerSec: anyNumber }),
  ),
});
export type StalenessReport = z.infer<typeof StalenessReportSchema>;

/** The JSON report of a finished run (what `peertrain train --report` writes). */
export const RunReportSchema = z.object({
  config: RunConfigSchema,
  finalLoss: anyNumber,
  testAccuracy: anyNumber,
  /** Runs with a targetAccuracy: whether and when it was reached (the run ends there). */
  target: TargetReportSchema.exactOptional(),
  wallMs: anyNumber,
  stepMsMedian: anyNumber,
  computeMsMedian: anyNumber,
  commMsMedian: anyNumber,
  samplesPerSec: anyNumber,
  bytesSent: anyNumber,
  /** Bytes sent between peers per training sample (bytesSent / samples of the steps run). */
  bytesPerSample: anyNumber.exactOptional(),
  /** Mean over workers of their computeUtilization. */
  computeUtilization: anyNumber.exactOptional(),
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
      /** Sum of compute ms over sum of step wall ms (compute + communication), over the run's steps. */
      computeUtilization: anyNumber.exactOptional(),
      /** Its engine computed in a thread of its own (DeviceInfo.computeThread). */
      computeThread: z.literal(true).exactOptional(),
      /**
       * DiLoCo with fillWaits: samples of the extra inner steps it took while waiting for an
       * exchange (not in samplesPerSec or bytesPerSample, which count the run's steps' batches).
       */
      extraSamples: count.exactOptional(),
      /** Its links to the run's peers by kind, as it reported them when ready. */
      links: LinkCountsSchema.exactOptional(),
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
  /** Asynchronous parameter server (sync ps-async): the staleness the workers saw. */
  staleness: StalenessReportSchema.exactOptional(),
  /** Runs with compress other than none: the spec and, where the method measures it, wire bytes / fp32 bytes. */
  compression: z.object({ spec: z.string(), bytesRatio: anyNumber.exactOptional() }).exactOptional(),
  /** Elastic runs: every change of the members, with the step redone from and its cause. */
  membershipChanges: z
    .array(z.object({ step: count, epoch: count, cause: z.string(), peerId: z.string() }))
    .exactOptional(),
  /** Elastic pipelines: steps aborted or rolled back by recoveries, and run again (the step in flight included). */
  redoneSteps: count.exactOptional(),
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
    /** Mean over ranks of compute ms / step wall ms so far (absent from older emitters). */
    computeUtilization: anyNumber.exactOptional(),
    /**
     * Present when this event stands for several steps (the page coalesces progress): each step's
     * loss, oldest first, the last being `step` and `loss`.
     */
    losses: z.array(z.object({ step: count, loss: anyNumber })).exactOptional(),
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
  /** A checkpoint (checkpoint.ts): its manifest and its blob as base64; emitted every checkpointEvery steps. */
  z.object({
    type: z.literal('checkpoint'),
    manifest: CheckpointManifestSchema,
    blobBase64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64'),
  }),
]);
export type CoordinatorEvent = z.infer<typeof CoordinatorEventSchema>;

/** unknown in, typed out; throws ProtocolError('bad-message') naming the first bad field. */
export const parseCoordinatorEvent = (v: unknown): CoordinatorEvent =>
  parseWith(CoordinatorEventSchema, v, 'coordinator event');
export const parseRunReport = (v: unknown): RunReport => parseWith(RunReportSchema, v, 'run report');
