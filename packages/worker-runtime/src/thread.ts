// The compute thread's side (`@peertrain/worker-runtime/thread`): what a dedicated Worker imports to
// serve the engine (compute-thread-host.ts). Apart from the package's main entry, which brings the
// links and the runtime: none of that belongs in the thread.
export { serveCompute } from './compute-thread-host.ts';
export type { HostPort } from './compute-thread-host.ts';
export { engineCompute, engineMemory } from './engine-compute.ts';
export type { ThreadInit } from './compute-thread-wire.ts';
