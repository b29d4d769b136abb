import { ConfigError } from './errors.ts';
import type { ModelSpec } from './model.ts';

export const MODEL_PRESETS = ['mlp', 'cnn', 'deepMlp', 'wideMlp'] as const;
export type ModelPreset = (typeof MODEL_PRESETS)[number];

/**
 * Named models for MNIST-shaped data (784 floats per sample, 10 classes).
 * - mlp: 784-128-10 relu, 101,770 parameters: the data-parallel workhorse (fast on every backend).
 * - cnn: 8 layers, 9,098 parameters, reads the same 784 floats as a 28x28x1 image.
 * - deepMlp: 9 layers (784-256-128-128-64-10 relu), for cutting into pipeline stages.
 * - wideMlp: 9 layers (784-1024-1024-1024-1024-10 relu, 3.9M parameters): four nearly equal dense
 *   layers, heavy enough per micro-batch that a pipeline's compute outweighs its message latency
 *   (the benchmark measures the bubble on it).
 */
export function modelPreset(name: ModelPreset): ModelSpec {
  switch (name) {
    case 'mlp':
      return {
        name: 'mlp',
        inputShape: [784],
        classes: 10,
        layers: [{ kind: 'dense', units: 128 }, { kind: 'relu' }, { kind: 'dense', units: 10 }],
      };
    case 'cnn':
      return {
        name: 'cnn',
        inputShape: [28, 28, 1],
        classes: 10,
        layers: [
          { kind: 'conv2d', filters: 8, kernel: 3, stride: 1, padding: 'same' }, // [28, 28, 8]
          { kind: 'relu' },
          { kind: 'maxpool', size: 2 }, // [14, 14, 8]
          { kind: 'conv2d', filters: 16, kernel: 3, stride: 1, padding: 'same' }, // [14, 14, 16]
          { kind: 'relu' },
          { kind: 'maxpool', size: 2 }, // [7, 7, 16]
          { kind: 'flatten' }, // [784]
          { kind: 'dense', units: 10 },
        ],
      };
    case 'deepMlp':
      return {
        name: 'deepMlp',
        inputShape: [784],
        classes: 10,
        layers: [
          { kind: 'dense', units: 256 },
          { kind: 'relu' },
          { kind: 'dense', units: 128 },
          { kind: 'relu' },
          { kind: 'dense', units: 128 },
          { kind: 'relu' },
          { kind: 'dense', units: 64 },
          { kind: 'relu' },
          { kind: 'dense', units: 10 },
        ],
      };
    case 'wideMlp':
      return {
        name: 'wideMlp',
        inputShape: [784],
        classes: 10,
        layers: [
          { kind: 'dense', units: 1024 },
          { kind: 'relu' },
          { kind: 'dense', units: 1024 },
          { kind: 'relu' },
          { kind: 'dense', units: 1024 },
          { kind: 'relu' },
          { kind: 'dense', units: 1024 },
          { kind: 'relu' },
          { kind: 'dense', units: 10 },
        ],
      };
    default: {
      const unknownName: never = name;
      throw new ConfigError('unknown model preset', [String(unknownName)]);
    }
  }
}
