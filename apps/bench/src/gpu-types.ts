// The GPU part's figures (page and driver share them): one row per (backend, model, batch).

export interface GpuBenchOptions {
  backends: ('webgpu' | 'wasm')[];
  /** Batch sizes per model preset. */
  batches: Record<string, number[]>;
  warmupSteps: number;
  /** Timed steps at most, and the time budget per row (whichever ends first; at least 2 steps). */
  steps: number;
  budgetMs: number;
}

export interface GpuOpTime {
  kernel: string;
  /** Summed over the step's dispatches of this kernel; null where the backend reports no timing. */
  ms: number | null;
  count: number;
}

export interface GpuRow {
  backend: string;
  model: string;
  batch: number;
  /** Train step: forward, backward and the optimizer; webgpu on the device (loss read back only). */
  stepMs: number;
  steps: number;
  /** 3 x forward FLOPs x batch per step time (backward counted as twice the forward). */
  gflops: number;
  /** Kernels dispatched per step (tf.profile). */
  kernels: number;
  /** The five kernels that took longest (or were dispatched most, without timings). */
  topOps: GpuOpTime[];
  error?: string;
}

export interface GpuPart {
  /** The WebGPU adapter (vendor, architecture, description), or null without WebGPU. */
  adapter: Record<string, string | number | boolean> | null;
  fallbackAdapter: boolean;
  /** What `--backend auto` picks here, and each probe's GFLOP/s. */
  auto: string;
  probes: { backend: string; gflops: number; ok: boolean }[];
  rows: GpuRow[];
  /** Why the part did not run (SwiftShader without --gpu or --only gpu). */
  skipped?: string;
}
