// The GPU part: one tab of apps/bench/gpu.html times training steps of every model preset on webgpu
// and wasm at several batch sizes (step ms, achieved GFLOP/s, kernels per step and the five
// costliest), with what the probe picks. It runs on a real adapter, or when forced (--gpu, or
// `--only gpu` alone); on SwiftShader otherwise it is skipped (its webgpu compiles shaders for
// minutes). Quick mode: the MLP and CNN at batch 32, two timed steps: a smoke check.
import type { Browser } from 'playwright-core';
import type { GpuBenchOptions, GpuPart } from './gpu-types.ts';
import { fmt, markdownTable } from './table.ts';

export interface GpuOptions {
  browser: Browser;
  baseUrl: string;
  quick: boolean;
  /** Run even on a fallback (software) adapter. */
  force: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** What the page measures: about 2 minutes on an H200 tab (16 rows, wasm's wideMlp dominating). */
export function gpuBenchOptions(quick: boolean): GpuBenchOptions {
  if (quick) {
    return {
      backends: ['webgpu', 'wasm'],
      batches: { mlp: [32], cnn: [32] },
      warmupSteps: 1,
      steps: 2,
      budgetMs: 0,
    };
  }
  return {
    backends: ['webgpu', 'wasm'],
    batches: { mlp: [32, 96, 512], cnn: [32, 96, 512], wideMlp: [96, 512] },
    warmupSteps: 3,
    steps: 30,
    budgetMs: 3_000,
  };
}

export async function measureGpu(o: GpuOptions): Promise<GpuPart> {
  const page = await o.browser.newPage();
  try {
    page.on('console', (m) => m.type() === 'error' && o.log(`gpu page: ${m.text()}`));
    await page.goto(new URL('apps/bench/gpu.html', o.baseUrl).href); // baseUrl ends with a slash
    await page.waitForFunction(() => window.peertrainGpu !== undefined, undefined, { timeout: 60_000 });
    const adapter = await page.evaluate(async () => {
      // (WebGPU's types are not in this app's lib: the few fields read, typed here)
      type Info = { isFallbackAdapter?: boolean; vendor: string; architecture: string; description: string };
      const gpu = (navigator as { gpu?: { requestAdapter(): Promise<{ info: Info } | null> } }).gpu;
      const a = await gpu?.requestAdapter();
      return a
        ? {
            fallback: a.info.isFallbackAdapter === true || a.info.architecture === 'swiftshader',
            name: `${a.info.vendor} ${a.info.architecture} ${a.info.description}`,
          }
        : null;
    });
    o.log(`gpu: adapter ${adapter ? adapter.name : 'none'}`);
    if ((adapter === null || adapter.fallback) && !o.force) {
      return {
        adapter: null,
        fallbackAdapter: true,
        auto: '-',
        probes: [],
        rows: [],
        skipped: 'software adapter (add --gpu or run --only gpu)',
      };
    }
    const opts = gpuBenchOptions(o.quick);
    o.signal?.throwIfAborted();
    return await page.evaluate((x) => window.peertrainGpu!.run(x), opts);
  } finally {
    await page.close().catch(() => undefined);
  }
}

const R = 'right' as const;
const L = 'left' as const;

export function renderGpu(g: GpuPart): string[] {
  const out = ['## GPU: training step per model, backend and batch (one tab)', ''];
  if (g.skipped) return [...out, `Skipped: ${g.skipped}.`];
  const a = g.adapter;
  out.push(
    `Adapter: ${a ? `${String(a['vendor'])} ${String(a['architecture'])} ${String(a['description'] ?? '')}`.trim() : 'none'}` +
      `${g.fallbackAdapter ? ' (software)' : ''}. Probe: ${g.probes.map((p) => `${p.backend} ${fmt(p.gflops, 2)}${p.ok ? '' : ' (failed)'}`).join(', ')} GFLOP/s; auto picks **${g.auto}**.`,
    '',
    markdownTable(
      ['model', 'batch', 'backend', 'step ms', 'GFLOP/s', 'kernels', 'top ops (ms or dispatches)'],
      g.rows.map((r) => [
        r.model,
        String(r.batch),
        r.backend,
        fmt(r.stepMs, 2),
        fmt(r.gflops, 1),
        String(r.kernels),
        r.error ??
          r.topOps.map((t) => `${t.kernel} ${t.ms === null ? `x${t.count}` : `${fmt(t.ms, 2)}`}`).join(', '),
      ]),
      [L, R, L, R, R, R, L],
    ),
  );
  return out;
}
