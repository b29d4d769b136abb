export { SpanRecorder, laneOf } from './spans.ts';
export type { Span, SpanMeta, SpanRecorderOptions } from './spans.ts';
export { ClockSync } from './clock.ts';
export type { ClockEstimate, ClockSyncOptions, PingSample } from './clock.ts';
export { toChromeTrace } from './trace.ts';
export type { TraceOptions } from './trace.ts';
export { pipelineBubble } from './bubble.ts';
export { RunningMedian } from './median.ts';
