import { Worker } from 'node:worker_threads';
import { abortable } from '@peertrain/base';

export interface SignalServerOptions {
  /** Interface to bind; 127.0.0.1 unless asked (the `peerjs` CLI would bind every interface). */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** URL path of the PeerJS endpoint, e.g. '/peerjs'. */
  path?: string;
  /** Aborting before the server listens rejects; aborting later closes it. */
  signal?: AbortSignal;
}

export interface SignalServer {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Stops the server (idempotent). */
  close(): Promise<void>;
}

/** Starts a PeerJS signaling server (the `peer` package) in a worker thread. */
export async function startSignalServer(opts: SignalServerOptions = {}): Promise<SignalServer> {
  const { host = '127.0.0.1', port = 0, path = '/peerjs', signal } = opts;
  signal?.throwIfAborted();
  const worker = new Worker(new URL('./signal-server.worker.mjs', import.meta.url), {
    workerData: { host, port, path },
    // The worker only needs plain Node; do not inherit loaders such as tsx.
    execArgv: [],
  });
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= worker.terminate().then(() => undefined);
    return closing;
  };
  const listening = new Promise<number>((resolve, reject) => {
    worker.once('message', (msg: unknown) => {
      if (typeof msg === 'object' && msg !== null && 'port' in msg && typeof msg.port === 'number')
        resolve(msg.port);
      else reject(new Error('signal server: unexpected message from worker'));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`signal server exited early (code ${code})`)));
  });
  listening.catch(() => undefined); // after an abort nobody awaits it any more
  let boundPort: number;
  try {
    boundPort = await abortable(listening, signal);
  } catch (err) {
    await close();
    throw err;
  }
  worker.removeAllListeners();
  // Late failures (none expected) must not crash the process as unhandled 'error' events.
  worker.on('error', () => undefined);
  if (signal) {
    const onAbort = (): void => void close();
    signal.addEventListener('abort', onAbort, { once: true });
    void closingDone(worker).then(() => signal.removeEventListener('abort', onAbort));
  }
  return { host, port: boundPort, path, close };
}

function closingDone(worker: Worker): Promise<void> {
  return new Promise((resolve) => worker.once('exit', () => resolve()));
}
