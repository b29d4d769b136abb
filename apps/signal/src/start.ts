// `npm start`: the dashboard and worker pages from the Vite dev server plus PeerJS signaling, for
// people running PeerTrain on their own machine or LAN. Pages find the signaling server through
// /peertrain.json (host omitted: the page's own hostname, so LAN devices reach it too), and the
// STUN/TURN servers given with --ice there too, for volunteers beyond the LAN.
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'vite';
import { ConfigError } from '@peertrain/protocol';
import {
  REPO_ROOT,
  VITE_CACHE_DIR_ENV,
  pageConfig,
  peertrainJsonPlugin,
  randomRoom,
  startSignalServer,
} from '@peertrain/harness';
import { USAGE, parseStartOptions, startBanner } from './options.ts';

let opts;
try {
  opts = parseStartOptions(process.argv.slice(2), process.env);
} catch (err) {
  process.stderr.write(
    `peertrain start: ${err instanceof ConfigError ? err.message : String(err)}\n${USAGE}`,
  );
  process.exit(2);
}
if (opts === null) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const room = opts.room ?? randomRoom();
const signal = await startSignalServer({ host: opts.host, port: opts.signalPort, path: '/peerjs' });
const cacheDir = process.env[VITE_CACHE_DIR_ENV];
const vite = await createServer({
  root: REPO_ROOT,
  ...(cacheDir ? { cacheDir } : {}),
  configFile: join(REPO_ROOT, 'vite.config.ts'),
  server: { host: opts.host, port: opts.port },
  plugins: [
    peertrainJsonPlugin(pageConfig({ port: signal.port, path: signal.path, secure: false }, opts.iceServers)),
  ],
});
try {
  await vite.listen();
} catch (err) {
  await signal.close();
  throw err;
}
const port = (vite.httpServer?.address() as AddressInfo | null)?.port ?? opts.port;

const lines = startBanner({
  host: opts.host,
  port,
  signalPort: signal.port,
  signalPath: signal.path,
  room,
  iceServers: opts.iceServers,
  ...(opts.gpu ? { gpuEnv: process.env } : {}),
});
process.stdout.write(`${lines.join('\n')}\n`);

let stopping = false;
const stop = (sig: NodeJS.Signals): void => {
  if (stopping) process.exit(130);
  stopping = true;
  process.stdout.write(`\n${sig}: stopping\n`);
  void Promise.allSettled([vite.close(), signal.close()]).then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
