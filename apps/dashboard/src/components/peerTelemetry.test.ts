import { describe, expect, it } from 'vitest';
import type { PeerView } from '@peertrain/coordinator';
import {
  deviceText,
  deviceTitle,
  linkLines,
  linkTitle,
  memoryLines,
  memoryTitle,
  shardText,
} from './peerTelemetry.ts';

const device: NonNullable<PeerView['device']> = {
  backend: 'webgpu',
  gflops: 310,
  probes: [
    { backend: 'webgpu', ok: true, gflops: 310, workload: 'fwd+bwd 784-256-256-10 @64', stepMs: 1.25 },
    { backend: 'webgl', ok: false, gflops: 0, error: 'self-check failed' },
  ],
  adapter: { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true },
  limits: { maxStorageBuffersPerShaderStage: 10 },
  hardwareConcurrency: 8,
};

describe('peer table cells', () => {
  it('device: backend and GFLOP/s in the cell, probes, adapter and limits in the title', () => {
    expect(deviceText(device)).toBe('webgpu · 310.0');
    const title = deviceTitle(device);
    expect(title).toContain('webgl failed: self-check failed');
    expect(title).toContain('backend webgpu, 310.0 GFLOP/s (fwd+bwd 784-256-256-10 @64)');
    expect(title).toContain('webgpu 310.0 (1.25 ms per pass)');
    expect(title).toContain('adapter: vendor=google, architecture=swiftshader, isFallbackAdapter=true');
    expect(title).toContain('limits: maxStorageBuffersPerShaderStage=10');
    expect(title).toContain('8 cores');
    expect(deviceText(null)).toBe('–');
  });

  it('memory: bytes held (engine + parameters) over what they are, the detail (GPU, params, activations) in the title', () => {
    const m = { numBytes: 1_234_567, numTensors: 42, numBytesInGPU: 1_000_000, paramBytes: 400_000 };
    expect(memoryLines(m)).toEqual(['1.63 MB', '100k params + 42 tensors']); // engine 1.23 MB + parameters 400 kB
    expect(memoryLines({ numBytes: 10, numTensors: 1 })).toEqual(['10 B', '1 tensor']);
    // A peer keeping its parameters as arrays: the bytes count them, the engine holds no tensors.
    expect(memoryLines({ numBytes: 0, numTensors: 0, paramBytes: 407_080 })).toEqual([
      '407 kB',
      '102k params',
    ]);
    expect(memoryTitle({ ...m, peakActivationBytes: 120_000, unreliable: true })).toBe(
      'engine holds 1.23 MB in 42 tensors (1.00 MB on the GPU) (approximate)\n' +
        'parameters 400 kB: 100k float32 (arrays, outside the engine)\n' +
        "activations at the last step's peak 120 kB",
    );
    expect(memoryTitle({ ...m, savedActivations: 3 })).toContain(
      'activations of 3 micro-batches held for backward',
    );
    expect(memoryLines(null)).toEqual(['–', '']);
  });

  it('link: round trip over bandwidth', () => {
    const p = { rttMs: 0.62, bandwidthBytesPerSec: 21_300_000, clockOffsetMs: -1.5 };
    expect(linkLines(p)).toEqual(['0.62 ms', '21.3 MB/s']);
    expect(linkLines({ rttMs: null, bandwidthBytesPerSec: null })).toEqual(['–', '–']);
    expect(linkTitle(p)).toContain('clock offset -1.50 ms');
  });

  it('shard: half-open, in thousands', () => {
    expect(shardText({ start: 0, count: 30_000 })).toBe('0–30k');
    expect(shardText({ start: 30_000, count: 2_500 })).toBe('30k–32.5k');
    expect(shardText({ start: 0, count: 800 })).toBe('0–800');
    expect(shardText(null)).toBe('–');
  });
});
