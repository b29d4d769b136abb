/// <reference types="@webgpu/types" />
// WebGPU backend registration with a device we create ourselves.
//
// tfjs-backend-webgpu's own factory requests the device with default limits for everything but a
// few sizes, so maxStorageBuffersPerShaderStage stays at 8 and kernels binding more buffers fail
// (tf.addN with 10+ inputs: "storage buffers (11) ... exceeds the maximum per-stage limit (8)").
// We request every limit the adapter offers and hand the device to the WebGPUBackend constructor.
// Node-safe to import: the tfjs WebGPU package itself is loaded on demand.
import { BackendError } from '@peertrain/protocol';
import { tf } from './tf.ts';

export interface WebGpuDetails {
  /** Adapter info (vendor, architecture, device, description) plus isFallbackAdapter. */
  readonly adapter: Record<string, string | boolean | number>;
  /** The limits requested for (and granted to) the device: the adapter's own. */
  readonly limits: Record<string, number>;
}

let details: WebGpuDetails | undefined;
let lastError: string | undefined;

/** What the last WebGPU initialisation found, or why it failed. */
export function webGpuState(): { details: WebGpuDetails | undefined; error: string | undefined } {
  return { details, error: lastError };
}

function plainRecord<T>(source: object, keep: (v: unknown) => v is T): Record<string, T> {
  const out: Record<string, T> = {};
  // WebIDL attributes are enumerable getters on the prototype: for...in sees them
  for (const key in source) {
    const value: unknown = (source as Record<string, unknown>)[key];
    if (keep(value)) out[key] = value;
  }
  return out;
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isInfoValue = (v: unknown): v is string | boolean | number =>
  typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number';

async function createBackend(gpu: GPU): Promise<tf.KernelBackend> {
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new BackendError('webgpu: no adapter');
  const limits = plainRecord(adapter.limits, isNumber);
  const requiredFeatures: GPUFeatureName[] = [];
  // the same optional features tfjs's own factory asks for
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  if (adapter.features.has('bgra8unorm-storage')) requiredFeatures.push('bgra8unorm-storage');
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures });
  // `adapter.info` in current browsers; `requestAdapterInfo()` in older ones (and these typings)
  const withInfo = adapter as GPUAdapter & { info?: GPUAdapterInfo };
  const info = withInfo.info ?? (await adapter.requestAdapterInfo());
  const adapterRecord = plainRecord(info, isInfoValue);
  if (!('isFallbackAdapter' in adapterRecord) && 'isFallbackAdapter' in adapter) {
    adapterRecord['isFallbackAdapter'] = adapter.isFallbackAdapter;
  }
  details = { adapter: adapterRecord, limits: plainRecord(device.limits, isNumber) };
  void device.lost.then((lost) => {
    lastError = `webgpu device lost: ${lost.reason} ${lost.message}`;
  });
  return new WebGPUBackend(device, info);
}

/** Registers (or re-registers) the 'webgpu' backend with our device factory. */
export async function registerWebGpu(): Promise<void> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new BackendError('webgpu: navigator.gpu is not available');
  // importing the package registers tfjs's own factory when navigator.gpu exists: replace it
  await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  lastError = undefined;
  tf.registerBackend(
    'webgpu',
    async () => {
      try {
        return await createBackend(gpu);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        throw err;
      }
    },
    3,
  );
}
