import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'vite';
import type { ViteDevServer } from 'vite';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '@peertrain/harness';
import type { BrowserCheck } from './browser-check/page.ts';

// The engine in real Chromium: wasm from Vite `?url` assets, WebGL2 and WebGPU (SwiftShader here),
// our own WebGPU device with the adapter's limits (the addN-of-12 self-check fails under tfjs's
// default limits), the same gradients on every backend, MNIST over fetch, IndexedDB shard cache.
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');

describe('engine in Chromium', () => {
  let server: ViteDevServer;
  let browser: Browser;
  let result: BrowserCheck;

  beforeAll(async () => {
    server = await createServer({
      configFile: false,
      root: join(here, 'browser-check'),
      publicDir: join(repo, 'public'),
      logLevel: 'error',
      server: { host: '127.0.0.1', port: 0, fs: { allow: [repo] } },
    });
    await server.listen();
    const address = server.httpServer?.address();
    if (!address || typeof address === 'string') throw new Error('vite did not listen');
    browser = await launchBrowser();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${address.port}/index.html`);
    await page.waitForFunction(() => '__engineCheck' in globalThis, undefined, { timeout: 120_000 });
    const out = await page.evaluate(
      () =>
        (globalThis as unknown as { __engineCheck: Promise<BrowserCheck | { error: string }> }).__engineCheck,
    );
    if ('error' in out) throw new Error(`page failed: ${out.error}\n${errors.join('\n')}`);
    result = out;
  }, 600_000); // SwiftShader compiles every backend's shaders, the device path's too: minutes on 2 shared cores

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('probes every backend; wasm (via ?url), webgl and webgpu pass the self-check', () => {
    const ok = Object.fromEntries(result.probes.map((p) => [p.backend, p]));
    expect(result.probes.map((p) => p.backend)).toEqual(['webgpu', 'webgl', 'wasm', 'cpu']);
    for (const b of ['webgpu', 'webgl', 'wasm', 'cpu']) {
      expect(ok[b]?.error, b).toBeUndefined();
      expect(ok[b]?.ok, b).toBe(true);
      expect(ok[b]?.gflops, b).toBeGreaterThan(0);
    }
  });

  it('auto picks wasm over SwiftShader (WebGPU emulated on the CPU), within a bounded probe', () => {
    console.log(
      `probe ${result.probeMs.toFixed(0)} ms: ${result.probes
        .map(
          (p) =>
            `${p.backend} ${p.gflops.toFixed(2)} GFLOP/s (${p.stepMs?.toFixed(1)} ms/pass, ` +
            `warm-up ${p.warmupMs?.toFixed(0)} ms, ${p.samples} passes)`,
        )
        .join(', ')}; auto: ${result.auto}`,
    );
    if (result.device.adapter?.['architecture'] === 'swiftshader') {
      // WebGL draws with SwiftShader too: emulated, so auto passes over it even when its probe
      // reads faster than wasm's (2.80 against 2.72 GFLOP/s in one run here).
      expect(result.probes.filter((p) => p.emulated === true).map((p) => p.backend)).toEqual([
        'webgpu',
        'webgl',
      ]);
      expect(result.auto).toBe('wasm');
    }
    // webgpu on SwiftShader times one matmul, not the workload (its shader compilation alone took 28 s)
    const timed = result.probes.filter((p) => p.workload !== 'matmul (fallback adapter)');
    expect(timed.map((p) => p.backend)).toEqual(expect.arrayContaining(['webgl', 'wasm', 'cpu']));
    expect(new Set(timed.map((p) => p.workload)).size).toBe(1);
    expect(result.probeMs).toBeLessThan(30_000);
  });

  it('reports the WebGPU adapter and the limits requested from it', () => {
    expect(result.device.adapter).toBeDefined();
    expect(typeof result.device.adapter?.['vendor']).toBe('string');
    expect(result.device.limits?.['maxStorageBuffersPerShaderStage']).toBeGreaterThanOrEqual(10);
    expect(result.device.userAgent).toMatch(/Chrome/);
  });

  it('loads MNIST over fetch and round-trips a shard through IndexedDB', () => {
    expect(result.mnist).toEqual({ trainCount: 8000, testCount: 2000 });
    expect(result.shardCacheRoundTrip).toBe(true);
  });

  it('every backend computes the cpu gradients (mlp and cnn) without leaking tensors', () => {
    const speeds = Object.entries(result.models).map(
      ([model, byBackend]) =>
        `${model}: ${Object.entries(byBackend)
          .map(([b, r]) => `${b} ${r.msPerStep.toFixed(1)} ms`)
          .join(', ')}`,
    );
    console.log(`step time at batch 32: ${speeds.join('; ')}`);
    console.log(
      `probes: ${result.probes.map((p) => `${p.backend} ${p.gflops.toFixed(2)} GFLOP/s`).join(', ')}`,
    );
    for (const [model, byBackend] of Object.entries(result.models)) {
      expect(Object.keys(byBackend).sort(), model).toEqual(['cpu', 'wasm', 'webgl', 'webgpu']);
      for (const [backend, r] of Object.entries(byBackend)) {
        expect(r.maxRelDiff, `${model} on ${backend}`).toBeLessThan(1e-4);
        expect(Math.abs(r.loss - byBackend['cpu']!.loss), `${model} loss on ${backend}`).toBeLessThan(1e-4);
        expect(r.leakedTensors, `${model} on ${backend}`).toBe(0);
      }
    }
  });

  it('data-parallel replicas equal the reference after 3 steps on every backend, on the device on GPUs', () => {
    console.log(`replicas vs reference: ${JSON.stringify(result.equivalence)}`);
    expect(Object.keys(result.equivalence.mlp ?? {}).sort()).toEqual(['wasm', 'webgl', 'webgpu']);
    for (const [model, byBackend] of Object.entries(result.equivalence)) {
      for (const [backend, r] of Object.entries(byBackend)) {
        expect(r.device, `${model} on ${backend}`).toBe(backend !== 'wasm');
        expect(r.maxRelDiff, `${model} on ${backend}`).toBeLessThanOrEqual(1e-5);
        expect(r.leakedTensors, `${model} on ${backend}`).toBe(0);
      }
    }
  });
});
