import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, waitForExit } from '@peertrain/harness';
import type { CliReport } from './report.ts';

// The `peertrain` command end to end, in its own process and inside a private network namespace
// (--isolated-network), against stand-in pages served with --dist: the dashboard stand-in opens a
// PeerJS peer, waits for config.workers workers to connect over real WebRTC data channels and send
// a hello, then reports progress and a report naming them. `faults=malformed` makes it fail.
const DASHBOARD = `<!doctype html><meta charset="utf-8"><script src="/peerjs.min.js"></script>
<script type="module">
const q = new URLSearchParams(location.search);
const config = JSON.parse(atob(q.get('config').replace(/-/g, '+').replace(/_/g, '/')));
const emit = (e) => window.peertrainEmit(e);
if ((q.get('faults') || '').split(',').includes('malformed')) {
  await emit({ type: 'error', error: { name: 'ProtocolError', message: 'bad-magic: refused a frame' } });
} else {
  const cfg = await (await fetch('/peertrain.json')).json();
  const peer = new Peer(q.get('room') + '-dash', { host: cfg.signal.host || location.hostname, port: cfg.signal.port,
    path: cfg.signal.path, secure: cfg.signal.secure, config: { iceServers: cfg.iceServers } });
  const workers = [];
  await new Promise((resolve) => peer.on('connection', (conn) => conn.on('data', (d) => {
    workers.push({ peerId: conn.peer, rank: workers.length, role: 'worker', backend: new TextDecoder().decode(d),
      gflops: 1, bytesSent: d.byteLength, framesRefused: 0 });
    if (workers.length === config.workers) resolve();
  })));
  await emit({ type: 'log', message: workers.length + ' workers joined' });
  for (let step = 1; step <= config.steps; step++) {
    await emit({ type: 'progress', step, totalSteps: config.steps, loss: 2 / step, samplesPerSec: 500 });
  }
  await emit({ type: 'done', report: { config, finalLoss: 2 / config.steps, testAccuracy: 0.5, wallMs: 10,
    stepMsMedian: 2, computeMsMedian: 1, commMsMedian: 1, samplesPerSec: 500,
    bytesSent: workers.reduce((a, w) => a + w.bytesSent, 0), workers, loss: [], evals: [], errors: [] } });
}
</script>`;
const WORKER = `<!doctype html><meta charset="utf-8"><script src="/peerjs.min.js"></script>
<script type="module">
const q = new URLSearchParams(location.search);
const cfg = await (await fetch('/peertrain.json')).json();
const peer = new Peer({ host: cfg.signal.host || location.hostname, port: cfg.signal.port, path: cfg.signal.path,
  secure: cfg.signal.secure, config: { iceServers: cfg.iceServers } });
await new Promise((resolve) => peer.on('open', resolve));
const conn = peer.connect(q.get('room') + '-dash', { serialization: 'raw', reliable: true });
conn.on('open', () => conn.send(new TextEncoder().encode(q.get('backend') || 'auto').buffer));
</script>`;

const BIN = join(REPO_ROOT, 'apps/cli/bin/peertrain.mjs');

function peertrain(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return waitForExit(child).then((code) => ({ code, stdout, stderr }));
}

describe('peertrain train --isolated-network (stand-in pages)', () => {
  let dir = '';
  let dist = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peertrain-cli-'));
    dist = join(dir, 'dist');
    await mkdir(join(dist, 'apps/worker'), { recursive: true });
    await writeFile(join(dist, 'index.html'), DASHBOARD);
    await writeFile(join(dist, 'apps/worker/index.html'), WORKER);
    await copyFile(join(REPO_ROOT, 'node_modules/peerjs/dist/peerjs.min.js'), join(dist, 'peerjs.min.js'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a session over WebRTC in the namespace and writes the report', async () => {
    const reportPath = join(dir, 'out/report.json');
    const { code, stdout, stderr } = await peertrain([
      'train',
      '--isolated-network',
      '--dist',
      dist,
      '--workers',
      '2',
      '--steps',
      '4',
      '--backend',
      'wasm',
      '--dataset',
      'synthetic',
      '--room',
      'clitest',
      '--report',
      reportPath,
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('running inside a private network namespace');
    expect(stderr).toContain('2 workers joined');
    expect(stderr).toMatch(/step 4\/4 loss 0\.5000 500 samples\/s/); // plain lines: stderr is a pipe
    expect(stdout).toMatch(
      /peertrain: done in .*2 workers, data\/allreduce, mlp on synthetic, 4 steps.*isolated network/,
    );
    expect(stdout).toContain('final loss      0.5000');
    const report = JSON.parse(await readFile(reportPath, 'utf8')) as CliReport;
    expect(report.config).toMatchObject({ workers: 2, steps: 4, backend: 'wasm', dataset: 'synthetic' });
    expect(report.workers.map((w) => w.backend)).toEqual(['wasm', 'wasm']);
    expect(report.harness).toMatchObject({ isolated: true, room: 'clitest', faults: [] });
    expect(report.harness.chromium).toMatch(/^\d+\./);
    expect(report.harness.wallMs).toBeGreaterThan(0);
  }, 60_000);

  it('fails with status 1 and the page error when the session fails', async () => {
    const { code, stderr } = await peertrain([
      'train',
      '--isolated-network',
      '--dist',
      dist,
      '--workers',
      '1',
      '--inject-fault',
      'malformed',
      '--report',
      join(dir, 'fail.json'),
      '--quiet',
    ]);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe('peertrain: SessionError: ProtocolError: bad-magic: refused a frame');
    await expect(readFile(join(dir, 'fail.json'), 'utf8')).rejects.toThrow();
  }, 60_000);
});
