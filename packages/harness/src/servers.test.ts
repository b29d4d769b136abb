import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSessionServers } from './servers.ts';
import { startSignalServer } from './signal-server.ts';
import { startStaticServer } from './static-server.ts';

describe('startSignalServer', () => {
  it('serves PeerJS on 127.0.0.1 at the path, and frees the port on close', async () => {
    const server = await startSignalServer({ port: 0, path: '/signal' });
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${server.port}/signal`);
    expect(await res.json()).toMatchObject({ name: 'PeerJS Server' });
    // The id endpoint of the default key answers too: the PeerJS client calls it.
    const id = await fetch(`http://127.0.0.1:${server.port}/signal/peerjs/id`);
    expect(id.status).toBe(200);
    await server.close();
    await server.close(); // idempotent
    await expect(fetch(`http://127.0.0.1:${server.port}/signal`)).rejects.toThrow();
  });

  it('rejects when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      await expect(startSignalServer({ port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('honours an aborted signal, before and after it listens', async () => {
    await expect(startSignalServer({ signal: AbortSignal.abort() })).rejects.toThrow();
    const controller = new AbortController();
    const server = await startSignalServer({ signal: controller.signal });
    controller.abort();
    await server.close();
    await expect(fetch(`http://127.0.0.1:${server.port}/peerjs`)).rejects.toThrow();
  });
});

describe('startStaticServer', () => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'peertrain-static-'));
    await mkdir(join(root, 'apps/worker'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<h1>dashboard</h1>');
    await writeFile(join(root, 'apps/worker/index.html'), '<h1>worker</h1>');
    await writeFile(join(root, 'x.wasm'), new Uint8Array([0, 0x61, 0x73, 0x6d]));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('serves the pages, .wasm as application/wasm, and /peertrain.json', async () => {
    const server = await startStaticServer({
      root,
      signalInfo: { port: 9000, path: '/peerjs', secure: false },
      iceServers: [{ urls: 'stun:example.org' }],
    });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await (await fetch(server.url + '?room=r&headless=1')).text()).toContain('dashboard');
      expect(await (await fetch(server.url + 'apps/worker/?room=r')).text()).toContain('worker');
      const wasm = await fetch(server.url + 'x.wasm');
      expect(wasm.headers.get('content-type')).toBe('application/wasm');
      const cfg = await fetch(server.url + 'peertrain.json?x=1');
      expect(cfg.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await cfg.json()).toEqual({
        signal: { port: 9000, path: '/peerjs', secure: false },
        iceServers: [{ urls: 'stun:example.org' }],
      });
      expect((await fetch(server.url + 'peertrain.json', { method: 'POST' })).status).toBe(405);
      expect((await fetch(server.url + 'missing.js')).status).toBe(404);
    } finally {
      await server.close();
    }
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

describe('startSessionServers', () => {
  it('points /peertrain.json at its own signal server and closes both', async () => {
    const dist = await mkdtemp(join(tmpdir(), 'peertrain-servers-'));
    try {
      const servers = await startSessionServers({ dist });
      const cfg = (await (await fetch(servers.web.url + 'peertrain.json')).json()) as {
        signal: { host?: string; port: number; path: string };
      };
      expect(cfg.signal).toEqual({ port: servers.signal.port, path: '/peerjs', secure: false });
      expect(
        await (await fetch(`http://127.0.0.1:${cfg.signal.port}${cfg.signal.path}`)).json(),
      ).toMatchObject({
        name: 'PeerJS Server',
      });
      await servers.close();
      await expect(fetch(servers.web.url)).rejects.toThrow();
      await expect(fetch(`http://127.0.0.1:${servers.signal.port}/peerjs`)).rejects.toThrow();
    } finally {
      await rm(dist, { recursive: true, force: true });
    }
  });
});
