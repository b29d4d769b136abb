import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '@peertrain/protocol';
import type { BackendProbe } from '@peertrain/protocol';
import {
  activateBackend,
  benchmarkMatmul,
  describeDevice,
  initBackend,
  probeBackends,
  selectBackend,
  selfCheck,
} from './backends.ts';
import { tf } from './tf.ts';

describe('backends in Node', () => {
  afterAll(async () => {
    await activateBackend('cpu');
  });

  it('probes all four: cpu and wasm pass, webgl and webgpu fail with a reason', async () => {
    const probes = await probeBackends({ budgetMs: 30 });
    expect(probes.map((p) => p.backend)).toEqual(['webgpu', 'webgl', 'wasm', 'cpu']);
    const byName = Object.fromEntries(probes.map((p) => [p.backend, p]));
    expect(byName['cpu']!.ok).toBe(true);
    expect(byName['wasm']!.ok).toBe(true);
    expect(byName['cpu']!.gflops).toBeGreaterThan(0);
    expect(byName['wasm']!.gflops).toBeGreaterThan(0);
    for (const name of ['webgl', 'webgpu']) {
      expect(byName[name]!.ok).toBe(false);
      expect(byName[name]!.error).toBeTruthy();
    }
    // The faster of the two working ones: wasm (SIMD) when the machine is quiet, but which one is
    // a timing (it read cpu faster at load 19); the speeds themselves are the bench's.
    const faster = byName['wasm']!.gflops >= byName['cpu']!.gflops ? 'wasm' : 'cpu';
    expect(selectBackend('auto', probes)).toBe(faster);
  });

  it('the self-check passes on cpu and leaks nothing', async () => {
    await activateBackend('cpu');
    const before = tf.memory().numTensors;
    expect(await selfCheck()).toBeUndefined();
    expect(await benchmarkMatmul({ budgetMs: 10 })).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('selectBackend: fastest correct one, or the named one, or BackendError', () => {
    const probes: BackendProbe[] = [
      { backend: 'webgpu', ok: false, gflops: 0, error: 'no adapter' },
      { backend: 'webgl', ok: true, gflops: 40 },
      { backend: 'wasm', ok: true, gflops: 20 },
      { backend: 'cpu', ok: true, gflops: 0.3 },
    ];
    expect(selectBackend('auto', probes)).toBe('webgl');
    expect(selectBackend('cpu', probes)).toBe('cpu');
    expect(() => selectBackend('webgpu', probes)).toThrow(/no adapter/);
    expect(() => selectBackend('auto', [probes[0]!])).toThrow(BackendError);
    expect(() => selectBackend('wasm', [probes[0]!])).toThrow(BackendError);
  });

  it('selectBackend: auto passes over a GPU emulated in software unless nothing else works', () => {
    // What the probe read at load 17 on SwiftShader: webgl's pass ahead of wasm's.
    const probes: BackendProbe[] = [
      { backend: 'webgpu', ok: true, gflops: 0.04, emulated: true },
      { backend: 'webgl', ok: true, gflops: 1.85, emulated: true },
      { backend: 'wasm', ok: true, gflops: 1.57 },
      { backend: 'cpu', ok: true, gflops: 0.43 },
    ];
    expect(selectBackend('auto', probes)).toBe('wasm');
    expect(selectBackend('auto', probes.slice(0, 2))).toBe('webgl');
    expect(selectBackend('webgl', probes)).toBe('webgl'); // asked for by name
  });

  it('initBackend activates the chosen backend and describeDevice reports it', async () => {
    const info = await initBackend('wasm', { budgetMs: 20 });
    expect(tf.getBackend()).toBe('wasm');
    expect(info.backend).toBe('wasm');
    expect(info.gflops).toBeGreaterThan(0);
    expect(info.probes.map((p) => p.backend)).toEqual(['wasm']);
    expect(describeDevice().backend).toBe('wasm');
    await expect(initBackend('webgpu')).rejects.toThrow(BackendError);
  });

  it('honours an aborted signal', async () => {
    await expect(probeBackends({ signal: AbortSignal.abort() })).rejects.toThrow();
  });
});
