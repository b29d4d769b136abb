export { AbortError, abortReason, abortable, asError, deadline, sleep, throwIfAborted } from './abort.ts';
export { mulberry32 } from './random.ts';
export { macrotask, yieldToEventLoop } from './tasks.ts';
