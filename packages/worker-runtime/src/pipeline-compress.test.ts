import { afterEach, describe, expect, it } from 'vitest';
import { relativeError } from '@peertrain/compress';
import { createCoordinator } from '@peertrain/coordinator';
import { coordinatorPeerId, workerPeerId } from '@peertrain/protocol';
import type { RunConfigInput } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Mesh } from '@peertrain/transport';
import { nodeCompute } from './test-cluster.ts';
import { createWorkerRuntime } from './runtime.ts';

// --activation-compress: a 3-stage pipeline whose activations and gradients cross stages as fp16
// (or int8) payloads, against the exact run on the same seed. The bytes between stages are the
// workers' mesh counters on the three pipeline-only directions (0->1 and 1->2 carry activations,
// 2->1 gradients; 1->0 also carries stage 1's parameters to rank 0 for evaluation, so it is left out).

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const config: RunConfigInput = {
  strategy: 'pipeline',
  dataset: 'synthetic',
  model: 'deepMlp',
  workers: 3,
  partition: '0-1,2-5,6-8', // boundaries 256 and 128 wide
  schedule: '1f1b',
  microBatches: 2,
  steps: 3,
  batch: 48,
  lr: 0.05,
  seed: 11,
  evalEvery: 0,
};

interface Trained {
  params: Float32Array;
  bytes: number;
  reported: number;
}

/** Each (codec, zeros) run once for the whole file: the tests compare the same runs. */
const runs = new Map<string, Promise<Trained>>();
function train(activationCompress: 'none' | 'fp16' | 'int8', activationSkipZeros = false): Promise<Trained> {
  const key = `${activationCompress}/${activationSkipZeros}`;
  let run = runs.get(key);
  if (!run) {
    run = trainOnce(activationCompress, activationSkipZeros);
    runs.set(key, run);
  }
  return run;
}

/** Trains `config` with the given codec; the trained parameters and the bytes between stages. */
async function trainOnce(
  activationCompress: 'none' | 'fp16' | 'int8',
  activationSkipZeros: boolean,
): Promise<Trained> {
  const room = `ac-${activationCompress}${activationSkipZeros ? 'z' : ''}`;
  const net = createMemoryNetwork();
  const coord = createCoordinator({ mesh: createMesh(memoryTransport(net, coordinatorPeerId(room))), room });
  stops.push(() => coord.dispose());
  const meshes: Mesh[] = [];
  for (let i = 0; i < 3; i++) {
    const mesh = createMesh(memoryTransport(net, workerPeerId(room, `w${i}`)));
    meshes.push(mesh);
    const w = createWorkerRuntime({
      mesh,
      room,
      coordinatorId: coordinatorPeerId(room),
      compute: ({ signal }) => nodeCompute(signal),
    });
    stops.push(() => w.leave('test over'));
  }
  const report = await coord.run({ ...config, activationCompress, activationSkipZeros }, { waitMs: 30_000 });
  // Stage order is the rank order of report.pipeline.perStage.
  const ids = report.pipeline!.perStage.map((s) => s.peerId);
  const sent = (from: number, to: number): number => {
    const mesh = meshes.find((m) => m.localId === ids[from])!;
    return mesh.stats().perPeer[ids[to]!]?.bytesSent ?? 0;
  };
  expect(report.pipeline!.activationCompress).toBe(activationCompress);
  expect(report.pipeline!.activationSkipZeros).toBe(activationSkipZeros);
  return {
    params: coord.trainedModel()!.params,
    bytes: sent(0, 1) + sent(1, 2) + sent(2, 1),
    reported: report.pipeline!.bytesBetweenStagesPerStep ?? 0,
  };
}

describe('--activation-compress', () => {
  it('fp16 halves the bytes between stages and stays near the exact run after 3 steps; int8 quarters them', async () => {
    const exact = await train('none');
    const fp16 = await train('fp16');
    const int8 = await train('int8');
    const fp16Ratio = fp16.bytes / exact.bytes;
    const int8Ratio = int8.bytes / exact.bytes;
    const fp16Err = relativeError(fp16.params, exact.params);
    const int8Err = relativeError(int8.params, exact.params);
    console.info(
      `bytes between stages: exact ${exact.bytes}, fp16 ${fp16.bytes} (${fp16Ratio.toFixed(3)}x, params rel. err ${fp16Err.toExponential(2)}), int8 ${int8.bytes} (${int8Ratio.toFixed(3)}x, rel. err ${int8Err.toExponential(2)})`,
    );
    expect(exact.bytes).toBeGreaterThan(0);
    // The report's figure (payload bytes of the send spans, per step) agrees within frame headers.
    expect(exact.reported * config.steps!).toBeGreaterThan(exact.bytes * 0.95);
    expect(fp16.reported / exact.reported).toBeLessThanOrEqual(0.51);
    expect(fp16Ratio).toBeLessThanOrEqual(0.51);
    expect(int8Ratio).toBeLessThanOrEqual(0.3);
    // Lossy, but close: the exact run's parameters differ from fp16's by a small relative distance.
    expect(fp16Err).toBeGreaterThan(0);
    expect(fp16Err).toBeLessThan(1e-3);
    expect(int8Err).toBeLessThan(2e-2);
  });

  it('skipping zeros halves the bytes again and changes no bit, exact or fp16', async () => {
    // Both boundaries of the partition follow a relu: the activations are about half zeros, and the
    // gradients sent back are gated by them.
    const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const codec of ['none', 'fp16'] as const) {
      const dense = await train(codec, false);
      const sparse = await train(codec, true);
      const ratio = sparse.bytes / dense.bytes;
      console.info(
        `${codec}: bytes between stages ${dense.bytes} -> ${sparse.bytes} skipping zeros (${ratio.toFixed(3)}x)`,
      );
      expect(ratio).toBeLessThan(0.65);
      expect(sparse.reported / dense.reported).toBeLessThan(0.65);
      expect(bits(sparse.params).equals(bits(dense.params))).toBe(true);
    }
  });
});
