// The page of browser.e2e.test.ts: runs the engine in a real browser (Vite-served, so the wasm
// `?url` imports, WebGPU device creation and WebGL are the product's own) and publishes a summary.
import { installBrowserPlatform } from '../browser.ts';
import {
  activateBackend,
  buildModel,
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
import type { ModelPreset } from '../index.ts';
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
  };
}

const target = globalThis as { __engineCheck?: Promise<BrowserCheck | { error: string }> };
target.__engineCheck = check().catch((err: unknown) => ({
  error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err),
}));
