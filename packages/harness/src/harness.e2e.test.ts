import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './build.ts';
import { isolatedNetworkAvailable, spawnIsolated, waitForExit } from './netns.ts';

// Proves the whole path the CLI relies on: inside a private network namespace, two Chromium pages
// load /peertrain.json from the static server, register with our PeerJS signal server and open a
// reliable `raw` data channel to each other. Vitest itself is outside the namespace, so the browser
// part runs in a child process started with spawnIsolated.

const PAGE = `<!doctype html><meta charset="utf-8"><script src="/peerjs.min.js"></script>
<script>
window.startPeer = async (id) => {
  const cfg = await (await fetch('/peertrain.json')).json();
  const peer = new Peer(id, { host: cfg.signal.host ?? location.hostname, port: cfg.signal.port,
    path: cfg.signal.path, secure: cfg.signal.secure, config: { iceServers: cfg.iceServers } });
  await new Promise((resolve, reject) => { peer.on('open', resolve); peer.on('error', reject); });
  window.peer = peer;
  peer.on('connection', (conn) => conn.on('data', (d) => conn.send(new Uint8Array(d).reverse().buffer)));
};
window.dial = async (id) => {
  const t0 = performance.now();
  const conn = window.peer.connect(id, { serialization: 'raw', reliable: true });
  // Past 30 s the dial fails saying where its handshake stopped (one full run timed out here).
  let timer;
  const stalled = new Promise((_, reject) => { timer = setTimeout(() => {
    const pc = conn.peerConnection;
    reject(new Error('dial did not open in 30 s: ' + (pc ? 'signaling ' + pc.signalingState +
      ', gathering ' + pc.iceGatheringState + ', ice ' + pc.iceConnectionState : 'no peer connection')));
  }, 30000); });
  await Promise.race([stalled, new Promise((resolve, reject) => { conn.on('open', resolve); conn.on('error', reject); })]);
  clearTimeout(timer);
  const openMs = performance.now() - t0;
  const reply = new Promise((resolve) => conn.on('data', (d) => resolve(Array.from(new Uint8Array(d)))));
  conn.send(new Uint8Array([1, 2, 3]).buffer);
  return { openMs, reply: await reply };
};
</script>`;

const harness = join(REPO_ROOT, 'packages/harness/src/index.ts');
const SCRIPT = `
import { launchBrowser, startSignalServer, startStaticServer, webrtcWorks, insideIsolatedNetwork } from ${JSON.stringify(harness)};
const dir = process.argv[2];
const signal = await startSignalServer();
const web = await startStaticServer({ root: dir, signalInfo: { port: signal.port, path: signal.path, secure: false } });
const browser = await launchBrowser();
try {
  const probe = await webrtcWorks(browser);
  const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
  const pa = await a.newPage();
  const pb = await b.newPage();
  await Promise.all([pa.goto(web.url), pb.goto(web.url)]);
  await pa.evaluate(() => startPeer('peer-a'));
  await pb.evaluate(() => startPeer('peer-b'));
  const result = await pb.evaluate(() => dial('peer-a'));
  console.log(JSON.stringify({ inside: insideIsolatedNetwork(), probe, ...result }));
} finally {
  await browser.close();
  await web.close();
  await signal.close();
}
`;

describe('private network namespace + PeerJS signaling', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peertrain-harness-'));
    await writeFile(join(dir, 'index.html'), PAGE);
    await writeFile(join(dir, 'run.mts'), SCRIPT);
    await copyFile(join(REPO_ROOT, 'node_modules/peerjs/dist/peerjs.min.js'), join(dir, 'peerjs.min.js'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('can create the namespace here (root, unshare, ip)', async () => {
    expect(await isolatedNetworkAvailable()).toBe(true);
  });

  it('opens a PeerJS data channel between two pages through our signal server', async () => {
    const child = spawnIsolated(process.execPath, ['--import', 'tsx', join(dir, 'run.mts'), dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await waitForExit(child);
    expect(code, err).toBe(0);
    const line = out.trim().split('\n').at(-1) ?? '';
    const result = JSON.parse(line) as { inside: boolean; probe: boolean; openMs: number; reply: number[] };
    expect(result.inside).toBe(true);
    expect(result.probe).toBe(true);
    expect(result.reply).toEqual([3, 2, 1]);
    expect(result.openMs).toBeLessThan(5000);
  }, 60_000);
});
