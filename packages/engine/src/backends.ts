// Backend probing: initialise each tfjs backend, check its numbers, time a training-like workload
// after warming up (probe.ts), and pick the fastest correct one. Backends are imported on demand so Node never loads browser-only
// code; the browser entry (browser.ts) installs a platform hook that sets the wasm file URLs.
import { BACKENDS, BackendError } from '@peertrain/protocol';
import { mulberry32, throwIfAborted } from '@peertrain/base';
import type { BackendName, BackendProbe, DeviceInfo } from '@peertrain/protocol';
import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';
import { DEFAULT_LIMITS, DEFAULT_WORKLOAD, describeWorkload, timeWorkload } from './probe.ts';
import type { ProbeWorkload } from './probe.ts';
import { registerWebGpu, webGpuState } from './webgpu.ts';

/** Environment-specific setup the engine cannot do itself. */
export interface BackendPlatform {
  /** Called after the wasm backend module loads and before it initialises (browser: setWasmPaths). */
  configureWasm?(wasm: typeof WasmBackend): void;
}

let platform: BackendPlatform = {};
let lastProbes: BackendProbe[] = [];

/** Installs the platform hook (the browser entry does this on import). */
export function setBackendPlatform(p: BackendPlatform): void {
  platform = p;
}

const registered = new Set<BackendName>(['cpu']);

async function ensureRegistered(name: BackendName): Promise<void> {
  if (registered.has(name)) return;
  switch (name) {
    case 'cpu':
      break;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Threaded wasm needs COOP/COEP, breaks minified builds and was slower on 2 cores (PLATFORM.md).
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      platform.configureWasm?.(wasm);
      break;
    }
    case 'webgl':
      await import('@tensorflow/tfjs-backend-webgl');
      break;
    case 'webgpu':
      await registerWebGpu();
      break;
    default: {
      const unknownName: never = name;
      throw new BackendError(`unknown backend ${String(unknownName)}`);
    }
  }
  registered.add(name);
}

function initError(name: BackendName): string {
  const webgpuError = name === 'webgpu' ? webGpuState().error : undefined;
  return webgpuError ?? `${name}: initialisation failed`;
}

/** Makes `name` the active tfjs backend; throws BackendError if it cannot initialise. */
export async function activateBackend(name: BackendName, opts: { signal?: AbortSignal } = {}): Promise<void> {
  throwIfAborted(opts.signal);
  try {
    await ensureRegistered(name);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new BackendError(message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
  }
  throwIfAborted(opts.signal);
  // tfjs-backend-webgl registers itself only where it can run (a browser)
  if (!tf.findBackendFactory(name)) throw new BackendError(`${name}: not available in this environment`);
  if (!(await tf.setBackend(name))) throw new BackendError(initError(name));
  await tf.ready();
}

/** Deterministic test matrix [rows, cols] with values in [-1, 1). */
function testMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: rows * cols }, () => 2 * rand() - 1);
}

/**
 * How many tensors the self-check adds in one addN: one less than the storage buffers a WebGPU
 * shader stage may bind (the output takes one). Under tfjs's own WebGPU device (limit 8) 9 inputs
 * fail; our device has the adapter's limit (10 on SwiftShader, more on most GPUs).
 */
function addNCount(): number {
  const limit =
    tf.getBackend() === 'webgpu'
      ? webGpuState().details?.limits['maxStorageBuffersPerShaderStage']
      : undefined;
  return Math.max(2, (limit ?? 10) - 1);
}

/** Runs one check in its own tidy and readback, so a failing kernel cannot poison the others. */
async function checkOne(
  what: string,
  build: () => Tensor,
  expected: ArrayLike<number>,
  tol: number,
): Promise<string | undefined> {
  const out = tf.tidy(build);
  try {
    const got = await out.data();
    if (got.length !== expected.length) return `${what}: ${got.length} values, expected ${expected.length}`;
    for (let i = 0; i < got.length; i++) {
      if (!(Math.abs(got[i]! - expected[i]!) <= tol))
        return `${what}[${i}] = ${got[i]}, expected ${expected[i]}`;
    }
    return undefined;
  } catch (err) {
    return `${what} threw: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    out.dispose();
  }
}

/**
 * The numeric self-check of the active backend: a matmul and a softmax against JavaScript
 * references (float64), and an addN of as many tensors as a WebGPU stage can bind (the tfjs
 * default-limits bug). Returns why it failed, or undefined.
 */
export async function selfCheck(): Promise<string | undefined> {
  const [m, k, n] = [33, 17, 9];
  const a = testMatrix(m, k, 1);
  const b = testMatrix(k, n, 2);
  const mm = Array.from({ length: m * n }, (_, idx) => {
    const [i, j] = [Math.floor(idx / n), idx % n];
    let ref = 0;
    for (let p = 0; p < k; p++) ref += a[i * k + p]! * b[p * n + j]!;
    return ref;
  });
  const logits = testMatrix(4, 10, 3).map((v) => v * 20); // [4, 10], large enough to need max-subtraction
  const softmax = Array.from({ length: 40 }, (_, idx) => {
    const row = logits.subarray(idx - (idx % 10), idx - (idx % 10) + 10);
    const max = Math.max(...row);
    return Math.exp(logits[idx]! - max) / row.reduce((s, v) => s + Math.exp(v - max), 0);
  });
  const parts = Array.from({ length: addNCount() }, (_, i) => testMatrix(1, 8, 10 + i));
  const sum = Array.from({ length: 8 }, (_, j) => parts.reduce((s, p) => s + p[j]!, 0));
  return (
    (await checkOne(
      'matmul',
      () => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])),
      mm,
      1e-4 * k,
    )) ??
    (await checkOne('softmax', () => tf.softmax(tf.tensor2d(logits, [4, 10])), softmax, 1e-5)) ??
    (await checkOne(`addN of ${parts.length}`, () => tf.addN(parts.map((p) => tf.tensor1d(p))), sum, 1e-5))
  );
}

/**
 * Square matmul throughput of the active backend in GFLOP/s. Grows n from 64 until one product takes
 * a few ms (at most 1024), then times batches of products, waiting on the last one (a GPU queue runs
 * in order) through a one-number read so the readback is not timed. The best of three batches:
 * on a shared machine noise only ever slows a run down.
 */
export async function benchmarkMatmul(
  opts: { budgetMs?: number; signal?: AbortSignal } = {},
): Promise<number> {
  const budget = opts.budgetMs ?? 150;
  const run = async (a: Tensor, reps: number): Promise<number> => {
    const t0 = performance.now();
    const last = tf.tidy(() => {
      let c: Tensor | undefined;
      for (let r = 0; r < reps; r++) {
        c?.dispose();
        c = tf.matMul(a, a);
      }
      return tf.sum(tf.slice(c!, [0, 0], [1, 1]));
    });
    await last.data();
    last.dispose();
    return performance.now() - t0;
  };
  let n = 64;
  for (;;) {
    throwIfAborted(opts.signal);
    const a = tf.tensor2d(testMatrix(n, n, n), [n, n]);
    try {
      await run(a, 1); // warm-up: shader compilation, allocation
      const once = await run(a, 1);
      if (once < 4 && n < 1024) {
        n *= 2;
        continue;
      }
      const reps = Math.max(1, Math.min(50, Math.floor(budget / 3 / Math.max(once, 0.01))));
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        throwIfAborted(opts.signal);
        best = Math.min(best, await run(a, reps));
      }
      return (2 * n ** 3 * reps) / (best * 1e6);
    } finally {
      a.dispose();
    }
  }
}

/** True for webgpu on a software adapter: marked as a fallback, or SwiftShader by name. */
function isFallbackAdapter(backend: BackendName): boolean {
  const adapter = backend === 'webgpu' ? webGpuState().details?.adapter : undefined;
  return adapter?.['isFallbackAdapter'] === true || adapter?.['architecture'] === 'swiftshader';
}

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software/i;

/**
 * True when the active webgl backend draws with a software rasterizer. Its probe can outrun wasm's
 * on a loaded machine (SwiftShader spreads over every core: 1.85 against 1.57 GFLOP/s at load 17
 * here) while its training steps, with their readbacks, were 6-14x slower than wasm's.
 */
function isSoftwareWebGl(backend: BackendName): boolean {
  if (backend !== 'webgl') return false;
  const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
  if (!gl) return false;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer: unknown = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  return typeof renderer === 'string' && SOFTWARE_RENDERER.test(renderer);
}

/** Options of the probe: which backends, what to time, how long each may take. */
export interface ProbeOptions {
  only?: readonly BackendName[];
  signal?: AbortSignal;
  /** Per backend: the timed passes stop past this many ms (default DEFAULT_LIMITS.budgetMs). */
  budgetMs?: number;
  /**
   * What to time; default DEFAULT_WORKLOAD. A caller that knows the run's model and batch passes
   * `workloadFor(spec, batch)`. The first pass is never cut short: with a large workload (wideMlp at
   * batch 512 is 11 GFLOP a pass, tens of seconds on cpu) probe `only` the backends worth trying.
   */
  workload?: ProbeWorkload;
}

/**
 * Initialises each backend in turn (default: all four), runs the self-check, then times a forward
 * and backward pass of a dense stack after warming up (probe.ts): the first pass compiles a GPU's
 * kernels and must not count (it once read 0.3 GFLOP/s for an H200). Never throws for a failing
 * backend: its probe says ok: false and why. Leaves the last working backend active; call
 * `selectBackend` then `activateBackend`.
 */
export async function probeBackends(opts: ProbeOptions = {}): Promise<BackendProbe[]> {
  const probes: BackendProbe[] = [];
  const workload = opts.workload ?? DEFAULT_WORKLOAD;
  const limits = { ...DEFAULT_LIMITS, ...(opts.budgetMs !== undefined ? { budgetMs: opts.budgetMs } : {}) };
  const named = describeWorkload(workload);
  for (const backend of opts.only ?? BACKENDS) {
    throwIfAborted(opts.signal);
    try {
      await activateBackend(backend, opts.signal ? { signal: opts.signal } : {});
      const problem = await selfCheck();
      if (problem !== undefined) {
        probes.push({ backend, ok: false, gflops: 0, error: `self-check failed: ${problem}` });
        continue;
      }
      if (isFallbackAdapter(backend)) {
        // Software WebGPU (SwiftShader): compiling the workload's twenty-odd shaders took 28 s here
        // and it computes at a fraction of wasm's speed; one matmul says as much in a fraction of that.
        const gflops = await benchmarkMatmul({
          budgetMs: limits.budgetMs,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        probes.push({ backend, ok: true, gflops, emulated: true, workload: 'matmul (fallback adapter)' });
        continue;
      }
      const t = await timeWorkload(workload, { limits, ...(opts.signal ? { signal: opts.signal } : {}) });
      probes.push({
        backend,
        ok: true,
        gflops: t.gflops,
        ...(isSoftwareWebGl(backend) ? { emulated: true } : {}),
        workload: named,
        stepMs: t.stepMs,
        warmupMs: t.warmupMs,
        samples: t.samples,
      });
    } catch (err) {
      throwIfAborted(opts.signal);
      probes.push({ backend, ok: false, gflops: 0, error: err instanceof Error ? err.message : String(err) });
    }
  }
  // Load that comes and goes only ever slows a measurement, and the backends are timed one after
  // another: a wasm probe run while its tab was starved read 0.49 GFLOP/s (2.72 in another run) and
  // auto picked cpu (0.91). So with more than one backend timed in full, each is timed again, in
  // the reverse order, and keeps the faster of its two readings.
  const full = probes.filter((p) => p.ok && p.stepMs !== undefined);
  if (full.length > 1) {
    for (const p of [...full].reverse()) {
      throwIfAborted(opts.signal);
      try {
        await activateBackend(p.backend, opts.signal ? { signal: opts.signal } : {});
        const t = await timeWorkload(workload, { limits, ...(opts.signal ? { signal: opts.signal } : {}) });
        if (t.gflops > p.gflops) Object.assign(p, { gflops: t.gflops, stepMs: t.stepMs, samples: t.samples });
      } catch {
        throwIfAborted(opts.signal); // the first reading stands
      }
    }
  }
  lastProbes = probes;
  return probes;
}

/**
 * 'auto': the fastest backend that passed its probe, a GPU emulated in software only when no other
 * passed. A named backend: that one, if it passed;
 * otherwise BackendError (an explicit choice that cannot work should be loud, not silently replaced).
 */
export function selectBackend(
  preference: 'auto' | BackendName,
  probes: readonly BackendProbe[],
): BackendName {
  if (preference !== 'auto') {
    const probe = probes.find((p) => p.backend === preference);
    if (!probe) throw new BackendError(`${preference} was not probed`);
    if (!probe.ok) throw new BackendError(`${preference} is unusable: ${probe.error ?? 'failed its probe'}`);
    return preference;
  }
  // A GPU emulated on the CPU only when nothing else works: it shares wasm's cores and its probe
  // does not show what its readbacks cost a training step.
  const fastest = (emulated: boolean): BackendProbe | undefined => {
    let best: BackendProbe | undefined;
    for (const p of probes)
      if (p.ok && (p.emulated === true) === emulated && (!best || p.gflops > best.gflops)) best = p;
    return best;
  };
  const best = fastest(false) ?? fastest(true);
  if (!best)
    throw new BackendError(
      `no usable backend: ${probes.map((p) => `${p.backend}: ${p.error ?? '?'}`).join('; ')}`,
    );
  return best.backend;
}

/** Probes (only the preferred backend unless 'auto'), selects, activates; returns the device description. */
export async function initBackend(
  preference: 'auto' | BackendName,
  opts: Omit<ProbeOptions, 'only'> = {},
): Promise<DeviceInfo> {
  const probes = await probeBackends({ ...opts, ...(preference === 'auto' ? {} : { only: [preference] }) });
  const chosen = selectBackend(preference, probes);
  await activateBackend(chosen, opts.signal ? { signal: opts.signal } : {});
  return describeDevice();
}

interface NavigatorLike {
  userAgent?: string;
  hardwareConcurrency?: number;
  deviceMemory?: number;
}

/** The active backend, the last probes, WebGPU adapter info and limits, and what the navigator says. */
export function describeDevice(): DeviceInfo {
  const backend = tf.getBackend() as BackendName;
  const nav = (globalThis as { navigator?: NavigatorLike }).navigator;
  const info: DeviceInfo = {
    backend,
    gflops: lastProbes.find((p) => p.backend === backend)?.gflops ?? 0,
    probes: lastProbes,
  };
  const { details } = webGpuState();
  if (details) {
    info.adapter = details.adapter;
    info.limits = details.limits;
  }
  if (nav?.userAgent !== undefined) info.userAgent = nav.userAgent;
  if (nav?.hardwareConcurrency !== undefined) info.hardwareConcurrency = nav.hardwareConcurrency;
  if (nav?.deviceMemory !== undefined) info.deviceMemoryGiB = nav.deviceMemory;
  return info;
}
