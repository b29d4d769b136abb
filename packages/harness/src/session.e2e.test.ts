import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoordinatorEvent } from '@peertrain/protocol';
import { launchBrowser } from './browser.ts';
import { runSession } from './session.ts';
import type { SessionInfo } from './session.ts';

// runSession against stand-in pages that need no WebRTC (so no namespace): both talk to the PeerJS
// signal server over its WebSocket only. Each worker registers and sends one message to the
// dashboard, which waits for config.workers of them, like the real one, and then plays a scripted
// session chosen by `faults`.
const SIGNAL = `
const q = new URLSearchParams(location.search);
const room = q.get('room');
async function register(id, onMessage) {
  const { signal } = await (await fetch('/peertrain.json')).json();
  const base = 'ws://' + (signal.host || location.hostname) + ':' + signal.port + signal.path;
  const ws = new WebSocket(base + '/peerjs?key=peerjs&id=' + id + '&token=t');
  return new Promise((resolve) => {
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === 'OPEN') resolve(ws);
      else onMessage(msg);
    };
  });
}`;
const DASHBOARD = `<!doctype html><meta charset="utf-8"><script type="module">${SIGNAL}
const config = JSON.parse(atob(q.get('config').replace(/-/g, '+').replace(/_/g, '/')));
const faults = (q.get('faults') || '').split(',').filter(Boolean);
const emit = (e) => window.peertrainEmit(e);
const joined = new Map();
let allJoined;
const ready = new Promise((resolve) => (allJoined = resolve));
await register(room + '-dash', (msg) => {
  joined.set(msg.src, msg.payload.search);
  if (joined.size === config.workers) allJoined();
});
if (faults.includes('silent')) {
  // never reports anything
} else if (faults.includes('fail')) {
  console.error('boom in the dashboard');
  await emit({ type: 'error', error: { name: 'PeerLostError', message: 'peer w1 lost: gone' } });
} else if (faults.includes('garbage')) {
  await emit({ type: 'progress', step: 'one' });
} else {
  await ready;
  await emit({ type: 'log', message: 'headless ' + q.get('headless') + ' workers ' + [...joined.values()].join(' ') });
  for (let step = 1; step <= config.steps; step++) {
    await emit({ type: 'progress', step, totalSteps: config.steps, loss: 1 / step, samplesPerSec: 100 * step });
  }
  await emit({ type: 'eval', step: config.steps, accuracy: 0.75 });
  await emit({ type: 'done', report: {
    config, finalLoss: 1 / config.steps, testAccuracy: 0.75, wallMs: 5, stepMsMedian: 1, computeMsMedian: 0.5,
    commMsMedian: 0.5, samplesPerSec: 300, bytesSent: 0, workers: [], loss: [], evals: [], errors: [] } });
}
</script>`;
const WORKER = `<!doctype html><meta charset="utf-8"><script type="module">${SIGNAL}
const ws = await register(room + '-w' + Math.random().toString(36).slice(2, 8), () => {});
ws.send(JSON.stringify({ type: 'OFFER', dst: room + '-dash', payload: { search: location.search } }));
</script>`;

describe('runSession with stand-in pages', () => {
  let dist = '';
  let browser: Browser;
  beforeAll(async () => {
    dist = await mkdtemp(join(tmpdir(), 'peertrain-session-'));
    await mkdir(join(dist, 'apps/worker'), { recursive: true });
    await writeFile(join(dist, 'index.html'), DASHBOARD);
    await writeFile(join(dist, 'apps/worker/index.html'), WORKER);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser.close();
    await rm(dist, { recursive: true, force: true });
  });

  it('opens the dashboard and N worker tabs, forwards events and resolves with the report', async () => {
    const events: CoordinatorEvent[] = [];
    let info: SessionInfo | undefined;
    const report = await runSession({
      config: { workers: 3, steps: 3, backend: 'wasm', dataset: 'synthetic' },
      room: 'room-1',
      dist,
      onEvent: (e) => events.push(e),
      onReady: (i) => (info = i),
    });
    expect(report.config).toMatchObject({ workers: 3, steps: 3, backend: 'wasm', dataset: 'synthetic' });
    expect(report.testAccuracy).toBe(0.75);
    expect(events.map((e) => e.type)).toEqual(['log', 'progress', 'progress', 'progress', 'eval', 'done']);
    const search = '?room=room-1&backend=wasm';
    expect(events[0]).toEqual({ type: 'log', message: `headless 1 workers ${search} ${search} ${search}` });
    expect(info?.chromium).toMatch(/^\d+\.\d+/);
    expect(info?.workerUrl).toMatch(/\/apps\/worker\/\?room=room-1&backend=wasm$/);
    // Everything is down: the browser it launched, and both servers.
    await expect(fetch(info!.baseUrl)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${info!.signalPort}/peerjs`)).rejects.toThrow();
  }, 60_000);

  it("rejects with SessionError carrying the page's error and its console errors", async () => {
    const err = await runSession({ config: { workers: 1, steps: 2 }, faults: ['fail'], dist, browser }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      name: 'SessionError',
      remote: { name: 'PeerLostError', message: 'peer w1 lost: gone' },
    });
    expect((err as Error).message).toContain('dashboard: boom in the dashboard');
    expect(browser.contexts()).toHaveLength(0); // its pages are closed, the browser it was given is not
  }, 40_000);

  it('refuses an invalid event', async () => {
    const err = await runSession({ config: { workers: 1 }, faults: ['garbage'], dist, browser }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'SessionError', remote: { name: 'ProtocolError' } });
    expect((err as Error).message).toMatch(/coordinator event: step: /);
  }, 40_000);

  it('times out with PhaseTimeoutError when the pages report nothing', async () => {
    const err = await runSession({
      config: { workers: 1 },
      faults: ['silent'],
      dist,
      browser,
      idleTimeoutMs: 1500,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'PhaseTimeoutError', ms: 1500 });
    expect((err as Error).message).toMatch(/^startup/);
  }, 40_000);

  it('is cancellable', async () => {
    const controller = new AbortController();
    const t0 = performance.now();
    const running = runSession({
      config: { workers: 2 },
      faults: ['silent'],
      dist,
      browser,
      signal: controller.signal,
      onReady: () => setTimeout(() => controller.abort(), 300),
    });
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(browser.contexts()).toHaveLength(0);
  }, 40_000);

  it('fails a page that does not load', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'peertrain-empty-'));
    try {
      const err = await runSession({ config: { workers: 1 }, dist: empty, browser }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'SessionError', remote: { name: 'PageLoadError' } });
      expect((err as Error).message).toMatch(/404/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  }, 40_000);
});
