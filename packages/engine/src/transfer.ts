// Moving float32 values between JavaScript and the backend without a fresh buffer per move.
//
// A new ArrayBuffer of a few hundred KiB is not cheap: its pages are faulted in on first touch. In
// Chromium on this machine a 400 KB Float32Array took 1.07 ms to allocate and fill, and 4 us to
// copy into one that already existed (a virtual machine's page faults; README "Where a step's time
// went"). A step of the MLP uploaded its 101,770 parameters through one such copy and read each
// gradient back through another (tfjs-wasm's read slices its heap), about 2 ms of a 4 ms step.
// Here the wasm backend's heap is read and written in place; other backends keep tfjs's own paths.
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

/** What this file uses of tfjs-backend-wasm's BackendWasm (public fields of the class). */
interface WasmBackendView {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number; dtype: string } | undefined };
}

function wasmBackend(): WasmBackendView | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as Partial<WasmBackendView>;
  return b.wasm?.HEAPU8 instanceof Uint8Array && typeof b.dataIdMap?.get === 'function'
    ? (b as WasmBackendView)
    : null;
}

/**
 * `t`'s float32 values, copied into `out` at `offset`. On wasm straight from the heap (the kernels
 * ran synchronously); elsewhere through `t.data()`.
 */
export async function readInto(t: Tensor, out: Float32Array, offset = 0): Promise<void> {
  if (t.dtype !== 'float32') throw new TypeError(`readInto needs float32, got ${t.dtype}`);
  const wasm = wasmBackend();
  const info = wasm?.dataIdMap.get(t.dataId);
  if (wasm && info && info.dtype === 'float32' && info.memoryOffset % 4 === 0) {
    const heap = wasm.wasm.HEAPU8; // fetched now: the heap's buffer changes when it grows
    out.set(new Float32Array(heap.buffer, heap.byteOffset + info.memoryOffset, t.size), offset);
    return;
  }
  out.set(await t.data<'float32'>(), offset);
}

/**
 * A tensor of `values` (a view is fine). wasm copies into its heap at once, so the view is handed
 * over as it is; the other backends may keep the array they are given (cpu does, webgl and webgpu
 * until the upload), so they get a copy and the caller stays free to change `values`.
 */
export function tensorOf(values: Float32Array, shape: readonly number[]): Tensor {
  const owned = tf.getBackend() === 'wasm' ? values : values.slice();
  return tf.tensor(owned, shape as number[], 'float32');
}
