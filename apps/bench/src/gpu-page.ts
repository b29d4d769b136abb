// GPU bench page (apps/bench/gpu.html): times training steps of the model presets on webgpu and
// wasm in this tab and exposes window.peertrainGpu (the driver is gpu.ts). Synthetic inputs: the
// figure is the engine's step, not data loading.
import { installBrowserPlatform } from '@peertrain/engine/browser';
import {
  activateBackend,
  buildModel,
  createDeviceTrainer,
  createReplica,
  describeDevice,
  modelPreset,
  prefersDeviceTraining,
  probeBackends,
  selectBackend,
  tf,
} from '@peertrain/engine';
import type { Model, ModelPreset } from '@peertrain/engine';
import type { GpuBenchOptions, GpuOpTime, GpuPart, GpuRow } from './gpu-types.ts';

const OPTIMIZER = { kind: 'sgd', momentum: 0.9 } as const;

/** One training step of `model` at `batch` on the active backend, as a worker runs it alone. */
interface Stepper {
  step(): Promise<void>;
  /** The step's kernels, enqueued (for tf.profile: no await of results inside). */
  kernelsOnly(): Promise<void>;
  dispose(): void;
}

function stepper(model: Model, batch: number): Stepper {
  const x = Float32Array.from(
    { length: batch * model.inputSize },
    (_, i) => ((i * 2654435761) % 1000) / 1000,
  );
  const y = Int32Array.from({ length: batch }, (_, i) => i % model.classes);
  const params = model.initParams(1);
  if (prefersDeviceTraining()) {
    const t = createDeviceTrainer(model, params, { config: OPTIMIZER, lr: 0.01 });
    return {
      async step() {
        t.compute(x, y);
        const loss = t.readLoss();
        t.apply();
        await loss;
      },
      kernelsOnly() {
        t.compute(x, y);
        t.apply();
        return Promise.resolve();
      },
      dispose: () => t.dispose(),
    };
  }
  const replica = createReplica(
    model,
    { lr: 0.01, optimizer: OPTIMIZER, batch, seed: 1 },
    {
      x,
      y: Uint8Array.from(y),
      count: batch,
      first: 0,
    },
  );
  const indices = Int32Array.from({ length: batch }, (_, i) => i);
  const step = async (): Promise<void> => replica.apply((await replica.gradients(indices)).grads);
  return { step, kernelsOnly: step, dispose: () => undefined };
}

/** Per kernel name: summed time and dispatches of one step, the top five. */
async function topOps(s: Stepper): Promise<{ kernels: number; top: GpuOpTime[] }> {
  const info = await tf.profile(() => s.kernelsOnly());
  const by = new Map<string, { ms: number | null; count: number }>();
  for (const k of info.kernels) {
    const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : null;
    const e = by.get(k.name) ?? { ms: t === null ? null : 0, count: 0 };
    e.count++;
    if (e.ms !== null && t !== null) e.ms += t;
    by.set(k.name, e);
  }
  const top = [...by.entries()]
    .map(([kernel, e]) => ({ kernel, ms: e.ms, count: e.count }))
    .sort((a, b) => (b.ms ?? 0) - (a.ms ?? 0) || b.count - a.count)
    .slice(0, 5);
  return { kernels: info.kernels.length, top };
}

async function row(backend: string, name: string, batch: number, o: GpuBenchOptions): Promise<GpuRow> {
  const model = buildModel(modelPreset(name as ModelPreset));
  const flops = 3 * model.layers.reduce((a, l) => a + l.flops, 0) * batch;
  const s = stepper(model, batch);
  try {
    for (let i = 0; i < o.warmupSteps; i++) await s.step(); // compiles the shaders
    const t0 = performance.now();
    let steps = 0;
    while (steps < o.steps && (steps < 2 || performance.now() - t0 < o.budgetMs)) {
      await s.step();
      steps++;
    }
    const stepMs = (performance.now() - t0) / steps;
    const { kernels, top } = await topOps(s);
    return { backend, model: name, batch, stepMs, steps, gflops: flops / stepMs / 1e6, kernels, topOps: top };
  } finally {
    s.dispose();
  }
}

async function run(o: GpuBenchOptions): Promise<GpuPart> {
  installBrowserPlatform();
  const probes = await probeBackends();
  const auto = selectBackend('auto', probes);
  const adapter = describeDevice().adapter ?? null;
  const rows: GpuRow[] = [];
  for (const backend of o.backends) {
    if (!probes.some((p) => p.backend === backend && p.ok)) continue;
    await activateBackend(backend);
    for (const [name, batches] of Object.entries(o.batches)) {
      for (const batch of batches) {
        try {
          rows.push(await row(backend, name, batch, o));
        } catch (err) {
          const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
          rows.push({
            backend,
            model: name,
            batch,
            stepMs: NaN,
            steps: 0,
            gflops: NaN,
            kernels: 0,
            topOps: [],
            error,
          });
        }
      }
    }
  }
  return {
    adapter,
    fallbackAdapter: adapter?.['isFallbackAdapter'] === true || adapter?.['architecture'] === 'swiftshader',
    auto,
    probes: probes.map((p) => ({ backend: p.backend, gflops: p.gflops, ok: p.ok })),
    rows,
  };
}

declare global {
  interface Window {
    peertrainGpu?: { run(o: GpuBenchOptions): Promise<GpuPart> };
  }
}
window.peertrainGpu = { run };
