// Runs the PeerJS signaling server in a worker thread. The `peer` package starts timers it never
// stops and has no close(); terminating this thread is the only clean way to shut it down.
import { parentPort, workerData } from 'node:worker_threads';
import { PeerServer } from 'peer';

const { host, port, path } = workerData;
PeerServer({ host, port, path, allow_discovery: false }, (server) => {
  const address = server.address();
  parentPort.postMessage({
    type: 'listening',
    port: typeof address === 'object' && address ? address.port : port,
  });
});
// A listen error (EADDRINUSE, EACCES) is uncaught here and reaches the parent's 'error' event.
