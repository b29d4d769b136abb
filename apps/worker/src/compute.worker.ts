// The worker page's compute thread (computeThread.ts starts it): the TensorFlow.js engine, served
// to the page over postMessage, so the page's thread stays free for the links while steps compute.
import '@peertrain/engine/browser';
import { engineCompute, engineMemory, serveCompute } from '@peertrain/worker-runtime/thread';
import type { HostPort } from '@peertrain/worker-runtime/thread';

serveCompute(
  self as unknown as HostPort,
  (init) => engineCompute({ backend: init.backend, mnist: { kind: 'url', url: init.mnistUrl } }),
  engineMemory,
);
