export { AbortError, abortReason, abortable, asError, sleep, throwIfAborted } from './abort.ts';
export { mulberry32 } from './random.ts';
