// Inside a private network namespace (spawned by transport.e2e.test.ts): serves the check page
// with Vite, starts our PeerJS server, runs the page in Chromium and prints the results as one
// JSON line on stdout.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { launchBrowser } from '../browser.ts';
import { startSignalServer } from '../signal-server.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..', '..');
const signal = await startSignalServer({ path: '/peerjs' });
const vite = await createServer({
  configFile: false,
  root: here,
  logLevel: 'error',
  server: { host: '127.0.0.1', port: 0, fs: { allow: [repo] } },
});
const browser = await launchBrowser();
try {
  await vite.listen();
  const address = vite.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not listen');
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${address.port}/index.html?port=${signal.port}&path=${signal.path}`);
  await page.waitForFunction(() => '__transportCheck' in globalThis, undefined, { timeout: 60_000 });
  const out = await page.evaluate(
    () => (globalThis as unknown as { __transportCheck: Promise<unknown> }).__transportCheck,
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await browser.close();
  await vite.close();
  await signal.close();
}
