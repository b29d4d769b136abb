import { throwIfAborted } from '@peertrain/base';
import {
  Prefetcher,
  buildModel,
  createDeviceTrainer,
  createStageRunner,
  defaultShardCache,
  gatherBatch,
  initBackend,
  loadMnist,
  loadShard,
  modelPreset,
  paramDiff,
  prefersDeviceTraining,
  profileLayers,
  shardBatchIndices,
  shardCacheKey,
  sliceSamples,
  runSyntheticDataset,
  tf,
  trainReference,
  trainSamples,
} from '@peertrain/engine';
import { partRows } from './sharded-eval.ts';
import type { Batch, Dataset, MnistSource, ProbeOptions, Samples, ShardCache } from '@peertrain/engine';
import type { BackendName, DatasetName, Shard, StageRange } from '@peertrain/protocol';
import type {
  Compute,
  DeviceSteps,
  EngineMemory,
  PrepareRun,
  StageSession,
  TrainSession,
} from './compute.ts';

export interface EngineComputeOptions {
  backend: 'auto' | BackendName;
  /** Where MNIST comes from (browser: the page's /data/mnist.bin; Node: the file). */
  mnist?: MnistSource;
  /** Shard cache (default: IndexedDB in browsers, memory in Node). */
  cache?: ShardCache;
  /** Keep the training state on the device (TrainSession.deviceSteps); default: on webgpu and webgl. */
  deviceSteps?: boolean;
  /**
   * What the backend probe times and for how long (default: DEFAULT_WORKLOAD for 300 ms). In-process
   * clusters of tests pass a tiny workload: on tfjs-cpu the default probe cost about a second a worker.
   */
  probe?: Pick<ProbeOptions, 'workload' | 'budgetMs'>;
  /** Warm the model's code up before a data-parallel session is ready (warmUp; default true). */
  warmUp?: boolean;
  signal?: AbortSignal;
}

/** The TensorFlow.js compute engine: probes backends, then serves runs. */
export async function engineCompute(opts: EngineComputeOptions): Promise<Compute> {
  const device = await initBackend(opts.backend, { ...opts.probe, ...signalOpt(opts.signal) });
  const cache = opts.cache ?? defaultShardCache();
  const datasets = new Map<DatasetName, Promise<Dataset>>();
  const sessions = new Set<TrainSession>();

  function dataset(name: DatasetName, signal: AbortSignal | undefined): Promise<Dataset> {
    let d = datasets.get(name);
    if (!d) {
      d =
        name === 'mnist'
          ? loadMnist(opts.mnist, signal ? { signal } : {})
          : Promise.resolve(runSyntheticDataset());
      d.catch(() => datasets.delete(name)); // a failed or cancelled load is retried next time
      datasets.set(name, d);
    }
    return d;
  }

  async function prepare(run: PrepareRun, { signal }: { signal?: AbortSignal }): Promise<TrainSession> {
    const { config, shard, allShards } = run;
    const model = buildModel(modelPreset(config.model));
    const so = signal ? { signal } : {};
    // An elastic worker may take over any original rank's batches: it holds every shard's samples.
    const held = config.elastic ? { ...run, shard: spanOf(allShards) } : run;
    const load = (s: AbortSignal | undefined): Promise<Dataset> => dataset(config.dataset, s);
    const [train, test] = await loadRunSamples(cache, load, held, model.inputSize, so);
    const batches = batchSource(train.samples, shard, config, model.inputSize);
    const batchFor = (step: number, signal: AbortSignal | undefined): Promise<Batch> =>
      batches.batch(step, signal);
    const stages = new Set<{ reset(): void }>();
    // Pipeline stages run their own layers' kernels (stage()): the whole model's would be wasted.
    if (opts.warmUp !== false && config.strategy === 'data')
      await warmUp(model, train.samples, test.samples, run, so);

    const session: TrainSession = {
      paramCount: model.paramCount,
      layerCount: model.layers.length,
      paramShapes: model.params.map((p) => p.shape),
      initParams: () => model.initParams(config.seed),
      async gradients(params, step, o) {
        const batch = await batchFor(step, o.signal);
        const { loss, grads } = await model.lossAndGrads(params, batch.x, batch.y, o.out, o.hooks);
        return { loss, grads };
      },
      ...shardGradients(model, train.samples, config),
      ...deviceStepsOn(opts.deviceSteps ?? prefersDeviceTraining(device.backend), model, config, batchFor),
      evaluate: (params, o) => evaluatePart(model, test.samples, params, o),
      async reference(params, o) {
        const data = await dataset(config.dataset, o.signal);
        const ref = await trainReference({
          spec: model,
          config: { lr: config.lr, optimizer: config.optimizer, batch: config.batch, seed: config.seed },
          shards: allShards,
          data,
          steps: config.steps,
          ...(o.signal ? { signal: o.signal } : {}),
        });
        const diff = paramDiff(params, ref.params, model.params);
        return { ...diff, referenceLoss: ref.losses[ref.losses.length - 1] ?? NaN };
      },
      stage(range) {
        const { runner, session: st } = stageSession(model, range, config, batchFor);
        stages.add(runner);
        return st;
      },
      paramRange(range) {
        const s = model.stage(range.first, range.end);
        return { offset: s.paramOffset, count: s.paramCount };
      },
      dispose() {
        batches.close();
        for (const r of stages) r.reset();
        stages.clear();
        sessions.delete(session);
      },
    };
    sessions.add(session);
    return session;
  }

  return {
    device,
    prepare,
    profile(config, o) {
      const model = buildModel(modelPreset(config.model));
      const rows = Math.max(1, Math.floor(config.batch / config.microBatches));
      return profileLayers(model, rows, o.signal ? { signal: o.signal } : {});
    },
    memory: engineMemory,
    dispose() {
      for (const s of [...sessions]) s.dispose();
      datasets.clear();
    },
  };
}

/**
 * tf.memory() of the active backend: tensors and bytes the engine holds; webgl and webgpu add
 * numBytesInGPU (typed as the base MemoryInfo, so read it as unknown).
 */
export function engineMemory(): EngineMemory {
  const m = tf.memory();
  const gpu: unknown = (m as unknown as Record<string, unknown>)['numBytesInGPU'];
  return {
    numBytes: m.numBytes,
    numTensors: m.numTensors,
    ...(typeof gpu === 'number' && Number.isFinite(gpu) ? { numBytesInGPU: Math.round(gpu) } : {}),
    ...(m.unreliable ? { unreliable: true } : {}),
  };
}

/**
 * Batch buffers reused in turn. At most three are in use: the step's own, the one prefetched for the
 * next step, and one a restart left built for nobody; a batch's arrays are rewritten four batches
 * later, long after its step (the engine takes x within the step: wasm copies it into its heap, the
 * other backends' tensors of it die with the step). A fresh 100-400 KB array per step cost ~1 ms of
 * page faults, more than the MLP's whole step at batch 32 on wasm.
 */
const BATCH_BUFFERS = 4;

/** The shard's batches, prefetched one step ahead; asking for another step than the next restarts it. */
function batchSource(
  samples: Samples,
  shard: PrepareRun['shard'],
  config: PrepareRun['config'],
  inputSize: number,
): { batch(step: number, signal: AbortSignal | undefined): Promise<Batch>; close(): void } {
  const buffers = Array.from({ length: BATCH_BUFFERS }, () => ({
    x: new Float32Array(config.batch * inputSize), // [batch * inputSize]
    y: new Uint8Array(config.batch), // [batch]
  }));
  let turn = 0;
  const gather = (step: number): Batch => {
    const into = buffers[turn++ % BATCH_BUFFERS]!;
    return gatherBatch(samples, shardBatchIndices(shard, step, config.batch, config.seed), inputSize, into);
  };
  const make = (firstStep: number): Prefetcher<Batch> =>
    new Prefetcher<Batch>(gather, { firstStep, depth: 1, lastStep: config.steps - 1 });
  let batches = make(0);
  return {
    batch(step, signal) {
      if (batches.step !== step) {
        batches.close();
        batches = make(step);
      }
      return batches.next(signal ? { signal } : {});
    },
    close: () => batches.close(),
  };
}

/** Training passes of the warm-up (the second and later ran at steady speed here). */
const WARM_UP_PASSES = 2;
/** Test rows of the warm-up's evaluation. */
const WARM_UP_EVAL_ROWS = 256;

/**
 * Runs the model's training pass and its evaluation on throwaway parameters before the session is
 * ready, so the run's first steps do not pay for cold code: wasm functions before V8 tiers them up,
 * JavaScript before it is compiled, a GPU's shaders. Cold, the first steps of 3 MLP tabs took 10-25
 * ms against 1.3 warm, and the first 10-step round 250 ms against 90; that cost sat inside the time
 * to a target accuracy (from the first step), now it is part of loading.
 */
async function warmUp(
  model: ReturnType<typeof buildModel>,
  train: Samples,
  test: Samples,
  { shard, config }: PrepareRun,
  so: { signal?: AbortSignal },
): Promise<void> {
  const indices = shardBatchIndices(shard, 0, config.batch, config.seed);
  const batch = gatherBatch(train, indices, model.inputSize);
  const params = new Float32Array(model.paramCount);
  const grads = new Float32Array(model.paramCount);
  for (let i = 0; i < WARM_UP_PASSES; i++) {
    throwIfAborted(so.signal);
    await model.lossAndGrads(params, batch.x, batch.y, grads);
  }
  const rows = Math.min(test.count, WARM_UP_EVAL_ROWS);
  if (rows > 0)
    await model.evaluate(params, test.x.subarray(0, rows * model.inputSize), test.y.subarray(0, rows), so);
}

/** A session's deviceSteps on GPU backends (none elsewhere: the JavaScript path is faster there). */
function deviceStepsOn(
  on: boolean,
  model: ReturnType<typeof buildModel>,
  config: PrepareRun['config'],
  batchFor: (step: number, signal: AbortSignal | undefined) => Promise<Batch>,
): Pick<TrainSession, 'deviceSteps'> {
  if (!on) return {};
  return { deviceSteps: (params) => deviceSteps(model, params, config, batchFor) };
}

/** TrainSession.evaluate: the test split, or its part `o.part` (sharded-eval.ts). */
function evaluatePart(
  model: ReturnType<typeof buildModel>,
  test: Samples,
  params: Float32Array,
  o: { signal?: AbortSignal; part?: { index: number; of: number } },
): Promise<{ loss: number; accuracy: number; count: number }> {
  const [start, end] = o.part ? partRows(test.count, o.part) : [0, test.count];
  if (end === start) return Promise.resolve({ loss: 0, accuracy: 0, count: 0 });
  const x = test.x.subarray(start * model.inputSize, end * model.inputSize); // [rows * inputSize]
  return model.evaluate(params, x, test.y.subarray(start, end), o.signal ? { signal: o.signal } : {});
}

/** The session's DeviceSteps: engine's device trainer fed with the shard's prefetched batches. */
function deviceSteps(
  model: ReturnType<typeof buildModel>,
  params: Float32Array,
  config: PrepareRun['config'],
  batchFor: (step: number, signal: AbortSignal | undefined) => Promise<Batch>,
): DeviceSteps {
  const trainer = createDeviceTrainer(model, params, { config: config.optimizer, lr: config.lr });
  return {
    async compute(step, o) {
      const batch = await batchFor(step, o.signal);
      trainer.compute(batch.x, batch.y);
    },
    readLoss: () => trainer.readLoss(),
    readGrads: (out) => trainer.readGrads(out),
    apply: (mean) => trainer.apply(mean),
    readParams: (out) => trainer.readParams(out),
    dispose: () => trainer.dispose(),
  };
}

/** One pipeline stage of `model` over the shard's batches: layers [range.first, range.end). */
function stageSession(
  model: ReturnType<typeof buildModel>,
  range: StageRange,
  config: PrepareRun['config'],
  batchFor: (step: number, signal: AbortSignal | undefined) => Promise<Batch>,
): { runner: { reset(): void }; session: StageSession } {
  const runner = createStageRunner(model, range, {
    batch: config.batch,
    microBatches: config.microBatches,
    recompute: config.recompute,
  });
  const session: StageSession = {
    first: range.first,
    end: range.end,
    isFirst: runner.isFirst,
    isLast: runner.isLast,
    paramOffset: runner.stage.paramOffset,
    paramCount: runner.stage.paramCount,
    async beginStep(step, params, o) {
      // Only the ends need the batch: a middle stage (or an interleaved peer's middle chunk) skips
      // it, so one peer's chunks do not ask the prefetcher for the same step twice.
      if (!runner.isFirst && !runner.isLast) return runner.beginStep(params, {});
      const batch = await batchFor(step, o.signal);
      runner.beginStep(params, {
        ...(runner.isFirst ? { x: batch.x } : {}),
        ...(runner.isLast ? { y: batch.y } : {}),
      });
    },
    forward: (mb, input) => runner.forward(mb, input),
    backward: (mb, dy) => runner.backward(mb, dy),
    backwardInput: (mb, dy) => runner.backwardInput(mb, dy),
    backwardWeight: (mb) => runner.backwardWeight(mb),
    endStep: (grads) => runner.endStep(grads),
    reset: () => runner.reset(),
  };
  return { runner, session };
}

/**
 * How long after loading a tab writes its shard and test split to IndexedDB. Written at once, the
 * copy (2-3 s of structured cloning in the tab and of database work in the browser process) ran
 * beside the first steps of every tab: 3 MLP tabs of local SGD ended their first 10-step round at
 * 177 ms, its exchange taking 92; held back, at 90-106 ms, taking 55-65 (25-40 later on). A tab
 * reloaded later than this finds its data in the cache.
 */
export const CACHE_STORE_AFTER_MS = 10_000;

/**
 * The shard's training samples and the test split. They come from the cache when this tab (or a
 * reload of it) has held them before; only a miss loads the whole dataset. An IndexedDB copy is
 * written CACHE_STORE_AFTER_MS later (memory caches at once).
 */
function loadRunSamples(
  cache: ShardCache,
  dataset: (signal: AbortSignal | undefined) => Promise<Dataset>,
  { config, shard }: PrepareRun,
  inputSize: number,
  so: { signal?: AbortSignal },
): Promise<[{ samples: Samples }, { samples: Samples }]> {
  const opts = { ...so, storeAfterMs: cache.kind === 'indexeddb' ? CACHE_STORE_AFTER_MS : 0 };
  return Promise.all([
    loadShard(
      cache,
      shardCacheKey(config.dataset, shard),
      async (s) => sliceSamples(trainSamples(await dataset(s)), shard, inputSize),
      opts,
    ),
    loadShard(
      cache,
      shardCacheKey(config.dataset, 'test'),
      async (s): Promise<Samples> => {
        const d = await dataset(s);
        return { x: d.testX, y: d.testY, count: d.testCount, first: 0 };
      },
      opts,
    ),
  ]);
}

/** The smallest contiguous range of samples that holds every shard. */
function spanOf(shards: readonly Shard[]): Shard {
  const start = Math.min(...shards.map((s) => s.start));
  const end = Math.max(...shards.map((s) => s.start + s.count));
  return { start, count: end - start };
}

/**
 * gradientsOf: any batch of a shard whose samples the session holds (an elastic session holds
 * every shard's, another its own shard's), not prefetched.
 */
function shardGradients(
  model: ReturnType<typeof buildModel>,
  samples: Samples,
  config: PrepareRun['config'],
): Pick<TrainSession, 'gradientsOf'> {
  return {
    gradientsOf(params, step, of, o) {
      const batch = gatherBatch(
        samples,
        shardBatchIndices(of, step, config.batch, config.seed),
        model.inputSize,
      );
      return model.lossAndGrads(params, batch.x, batch.y, o.out);
    },
  };
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
