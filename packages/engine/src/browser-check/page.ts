// The page of browser.e2e.test.ts: runs the engine in a real browser (Vite-served, so the wasm
// `?url` imports, WebGPU device creation and WebGL are the product's own) and publishes a summary.
import { installBrowserPlatform } from '../browser.ts';
import {
  activateBackend,
  buildModel,
  createDeviceTrainer,
  createReplica,
  gatherBatch,
  prefersDeviceTraining,
  shardBatchIndices,
  trainReference,
  describeDevice,
  indexedDbShardCache,
  loadMnist,
  modelPreset,
  paramDiff,
  probeBackends,
  selectBackend,
  sliceSamples,
  tf,
  trainSamples,
} from '../index.ts';
import type { Dataset, Model, ModelPreset } from '../index.ts';
import type { BackendName, BackendProbe, DeviceInfo } from '@peertrain/protocol';

export interface BrowserCheck {
  probes: BackendProbe[];
  /** The whole probe (four backends, default budget), ms. */
  probeMs: number;
  /** What `--backend auto` picks from those probes. */
  auto: BackendName;
  device: DeviceInfo;
  mnist: { trainCount: number; testCount: number };
  shardCacheRoundTrip: boolean;
  /** Per model and backend: the loss, and the gradients' distance from the cpu backend's. */
  models: Record<
    string,
    Record<string, { loss: number; maxRelDiff: number; leakedTensors: number; msPerStep: number }>
  >;
  /**
   * Per model and backend: two data-parallel replicas (on the device where the backend prefers it)
   * against the single-worker reference after 3 steps, and the tensors left behind.
   */
  equivalence: Record<string, Record<string, { maxRelDiff: number; leakedTensors: number; device: boolean }>>;
}

const SHARDS = [
  { start: 0, count: 400 },
  { start: 400, count: 400 },
];

/** Two replicas at batch 16 with averaged gradients, 3 steps, vs trainReference at batch 32. */
async function replicasVsReference(model: Model, data: Dataset): Promise<number> {
  const config = { lr: 0.05, optimizer: { kind: 'sgd', momentum: 0.9 } as const, batch: 16, seed: 3 };
  const steps = 3;
  const ref = await trainReference({ spec: model, config, shards: SHARDS, data, steps });
  const samples = trainSamples(data);
  const init = model.initParams(config.seed);
  const out = new Float32Array(model.paramCount);
  if (prefersDeviceTraining()) {
    const trainers = SHARDS.map(() =>
      createDeviceTrainer(model, init, { config: config.optimizer, lr: config.lr }),
    );
    try {
      for (let step = 0; step < steps; step++) {
        const grads = SHARDS.map(() => new Float32Array(model.paramCount));
        for (const [rank, t] of trainers.entries()) {
          const b = gatherBatch(samples, shardBatchIndices(SHARDS[rank]!, step, 16, config.seed), 784);
          t.compute(b.x, b.y);
          await t.readGrads(grads[rank]!);
        }
        const mean = grads[0]!.map((g, i) => (g + grads[1]![i]!) / 2);
        for (const t of trainers) t.apply(mean);
      }
      await trainers[1]!.readParams(out);
    } finally {
      for (const t of trainers) t.dispose();
    }
  } else {
    const replicas = SHARDS.map(() => createReplica(model, config, samples, init));
    for (let step = 0; step < steps; step++) {
      const grads: Float32Array[] = [];
      for (const [rank, r] of replicas.entries())
        grads.push(
          (await r.gradients(shardBatchIndices(SHARDS[rank]!, step, 16, config.seed))).grads.slice(),
        );
      const mean = grads[0]!.map((g, i) => (g + grads[1]![i]!) / 2);
      for (const r of replicas) r.apply(mean);
    }
    out.set(replicas[1]!.params);
  }
  return paramDiff(out, ref.params, model.params).maxRelDiff;
}

async function check(): Promise<BrowserCheck> {
  installBrowserPlatform();
  const t0 = performance.now();
  const probes = await probeBackends();
  const probeMs = performance.now() - t0;
  const auto = selectBackend('auto', probes);
  const device = describeDevice();
  const data = await loadMnist();
  const cache = indexedDbShardCache('peertrain-browser-check');
  const shard = sliceSamples(trainSamples(data), { start: 100, count: 50 }, 784);
  await cache.put('check', shard);
  const back = await cache.get('check');
  const shardCacheRoundTrip =
    back !== undefined &&
    back.first === 100 &&
    back.x.length === shard.x.length &&
    back.x[500] === shard.x[500];
  await cache.delete('check');

  const usable = probes.filter((p) => p.ok).map((p) => p.backend);
  const models: BrowserCheck['models'] = {};
  const equivalence: BrowserCheck['equivalence'] = {};
  for (const name of ['mlp', 'cnn'] as ModelPreset[]) {
    const model = buildModel(modelPreset(name));
    const params = model.initParams(5);
    const batch = 32; // one worker's default batch
    const x = data.trainX.subarray(0, batch * 784);
    const y = data.trainY.subarray(0, batch);
    const results: Record<string, { loss: number; grads: Float32Array; leaked: number; ms: number }> = {};
    for (const backend of ['cpu', ...usable.filter((b) => b !== 'cpu')] as BackendName[]) {
      await activateBackend(backend);
      const first = await model.lossAndGrads(params, x, y);
      const before = tf.memory().numTensors;
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await model.lossAndGrads(params, x, y);
      const ms = (performance.now() - t0) / 5;
      results[backend] = {
        loss: first.loss,
        grads: first.grads,
        leaked: tf.memory().numTensors - before,
        ms,
      };
    }
    equivalence[name] = {};
    // (the MLP only: SwiftShader compiles the CNN's new shaders for minutes; its device path is
    // covered in Node by device-train.test.ts and its fused conv by the gradients above)
    for (const backend of name === 'mlp' ? usable.filter((b) => b !== 'cpu') : []) {
      await activateBackend(backend);
      const before = tf.memory().numTensors;
      const maxRelDiff = await replicasVsReference(model, data);
      const leakedTensors = tf.memory().numTensors - before;
      equivalence[name][backend] = { maxRelDiff, leakedTensors, device: prefersDeviceTraining() };
    }
    const cpu = results['cpu']!;
    models[name] = Object.fromEntries(
      Object.entries(results).map(([b, r]) => [
        b,
        {
          loss: r.loss,
          maxRelDiff: paramDiff(r.grads, cpu.grads, model.params).maxRelDiff,
          leakedTensors: r.leaked,
          msPerStep: r.ms,
        },
      ]),
    );
  }
  return {
    probes,
    probeMs,
    auto,
    device,
    mnist: { trainCount: data.trainCount, testCount: data.testCount },
    shardCacheRoundTrip,
    models,
    equivalence,
  };
}

const target = globalThis as { __engineCheck?: Promise<BrowserCheck | { error: string }> };
target.__engineCheck = check().catch((err: unknown) => ({
  error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err),
}));
