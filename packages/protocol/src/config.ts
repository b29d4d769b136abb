import { z } from 'zod';
import { ConfigError } from './errors.ts';

export const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Sizes of the built-in datasets; coordinator and engine agree on them through this table. */
export const DATASETS = {
  /** 10,000 real MNIST digits from the `mnist` package, fixed split (public/data/mnist.bin). */
  mnist: { train: 8000, test: 2000, inputSize: 784, classes: 10 },
  /** Seeded, learnable Gaussian blobs in the MNIST shape: fast tests without the data file. */
  synthetic: { train: 4096, test: 1024, inputSize: 784, classes: 10 },
} as const;
export type DatasetName = keyof typeof DATASETS;

export const OptimizerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sgd'), momentum: z.number().min(0).max(1).default(0) }),
  z.object({
    kind: z.literal('adam'),
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.999),
    epsilon: z.number().positive().default(1e-8),
  }),
]);
export type OptimizerConfig = z.infer<typeof OptimizerSchema>;

/** Everything a training session needs; sent to every worker in `assign`. */
export const RunConfigSchema = z.object({
  strategy: z.enum(['data']).default('data'),
  sync: z.enum(['allreduce', 'ps']).default('allreduce'),
  model: z.enum(['mlp', 'cnn']).default('mlp'),
  dataset: z.enum(['mnist', 'synthetic']).default('mnist'),
  workers: z.number().int().min(1).max(64).default(3),
  steps: z.number().int().min(1).default(300),
  /** Per-worker batch size; the global batch is workers * batch. */
  batch: z.number().int().min(1).max(4096).default(32),
  // 0.1: MNIST MLP reaches 0.94+ in 300 steps at global batch 96 on every seed tried (engine README).
  lr: z.number().positive().default(0.1),
  optimizer: OptimizerSchema.default({ kind: 'sgd', momentum: 0.9 }),
  seed: z.number().int().min(0).max(0xffffffff).default(42),
  backend: z.enum(['auto', ...BACKENDS]).default('auto'),
  /** All-reduce bucket size in float32 elements (bandwidth/latency trade-off). */
  bucketElems: z.number().int().min(1).default(65536),
  /** Evaluate test accuracy every this many steps (0: only at the end). */
  evalEvery: z.number().int().min(0).default(50),
  /** Also train the single-worker reference (batch workers*batch) and report the parameter difference. */
  reference: z.boolean().default(false),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/** Unknown in, RunConfig out; throws ConfigError listing every problem. */
export function parseRunConfig(input: unknown): RunConfig {
  const r = RunConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    throw new ConfigError(
      'invalid run configuration',
      r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return r.data;
}
