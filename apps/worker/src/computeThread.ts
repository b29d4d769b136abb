import { ComputeThreadError, threadedCompute } from '@peertrain/worker-runtime';
import type { Compute, ThreadInit } from '@peertrain/worker-runtime';

/**
 * The engine in a dedicated Worker (compute.worker.ts), as a Compute. A thread that dies (an
 * uncaught error there) fails its pending and later calls with ComputeThreadError; one that dies
 * while starting fails the start.
 */
export async function computeThread(init: ThreadInit, signal?: AbortSignal): Promise<Compute> {
  const worker = new Worker(new URL('./compute.worker.ts', import.meta.url), {
    type: 'module',
    name: 'peertrain-compute',
  });
  const died = new AbortController();
  let fail = (err: Error): void => died.abort(err);
  worker.addEventListener('error', (e: ErrorEvent) => {
    e.preventDefault();
    fail(new ComputeThreadError(`the compute thread failed: ${e.message || 'could not load'}`));
  });
  const compute = await threadedCompute(worker, init, {
    terminate: () => worker.terminate(),
    signal: signal ? AbortSignal.any([signal, died.signal]) : died.signal,
  });
  fail = (err) => compute.fail(err);
  return compute;
}
