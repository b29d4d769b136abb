// Browser entry (`@peertrain/engine/browser`): importing it installs the browser platform hook.
// Under Vite the wasm backend cannot find its .wasm files next to the bundle, so their URLs come
// from `?url` imports (Vite emits the files and gives their final URLs). Kept out of index.ts
// because Node cannot import `?url` specifiers.
import plainWasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdWasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedSimdWasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { setBackendPlatform } from './backends.ts';

/**
 * Sets the wasm file URLs. Threads are disabled in backends.ts, so the threaded binary is never
 * fetched, but setWasmPaths refuses a map that lacks any of the three names.
 */
export function installBrowserPlatform(): void {
  setBackendPlatform({
    configureWasm(wasm) {
      wasm.setWasmPaths({
        'tfjs-backend-wasm.wasm': plainWasmUrl,
        'tfjs-backend-wasm-simd.wasm': simdWasmUrl,
        'tfjs-backend-wasm-threaded-simd.wasm': threadedSimdWasmUrl,
      });
    },
  });
}

installBrowserPlatform();
