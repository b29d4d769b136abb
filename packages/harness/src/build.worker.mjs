// Runs `vite build` through Vite's JS API in a worker thread, so that the build can be cancelled
// (the parent terminates the thread) and its memory is returned when it ends.
import { parentPort, workerData } from 'node:worker_threads';
import { build } from 'vite';

const { root, configFile, outDir, logLevel } = workerData;
try {
  await build({ root, configFile, logLevel, build: { outDir, emptyOutDir: true } });
  parentPort.postMessage({ ok: true });
} catch (err) {
  parentPort.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
}
