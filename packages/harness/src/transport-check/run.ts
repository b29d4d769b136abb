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
  optimizeDeps: { include: ['peerjs'] },
});
const browser = await launchBrowser();
try {
  await vite.listen();
  const address = vite.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not listen');
  const page = await browser.newPage();
  // A cold Vite transforms the whole transport module graph on first load, which took over a
  // minute on a fresh, busy CI machine; what the page logged says why when it never gets there.
  const log: string[] = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${address.port}/index.html?port=${signal.port}&path=${signal.path}`);
  await page
    .waitForFunction(() => '__transportCheck' in globalThis, undefined, { timeout: 180_000 })
    .catch((err: unknown) => {
      throw new Error(`compliance page never started: ${String(err)}\n${log.slice(-20).join('\n')}`);
    });
  const out = await page.evaluate(
    () => (globalThis as unknown as { __transportCheck: Promise<unknown> }).__transportCheck,
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await browser.close();
  await vite.close();
  await signal.close();
}
