// The one place that imports tfjs-core. The cpu backend is always registered (Node-safe, small);
// wasm, webgl and webgpu are imported on demand by backends.ts so that Node never loads
// browser-only code and the browser only downloads what it probes.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

export { tf };
export type { Tensor } from '@tensorflow/tfjs-core';
