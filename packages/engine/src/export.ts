// Export of a PeerTrain model as a TensorFlow.js Layers model (`model.json` + `weights.bin`), the
// format `tf.loadLayersModel` reads. Pure data: no file system, no network, no tensors.
//
// The Keras config mirrors what tfjs-layers 4.22 itself writes for `model.save()` (a Sequential
// model, snake_case keys, `batch_input_shape` on the first layer). tfjs-layers matches weights by
// `${layerName}/${weightName}` (the layer's name scope plus `kernel` or `bias`,
// `Container.loadWeights`), so every layer gets a unique name and each weight spec carries it.
// Our layers map one to one (dense -> Dense, conv2d -> Conv2D, maxpool -> MaxPooling2D,
// flatten -> Flatten, relu/tanh -> Activation), then an Activation('softmax'): our last layer
// outputs logits, and `predict` should give the probabilities that `model.predict` gives.
import type { LayerSpec } from '@peertrain/protocol';
import { ShapeError } from './errors.ts';
import type { Model } from './model.ts';
import { tf } from './tf.ts';

/** A JSON value (what `JSON.parse` gives back). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One Keras layer of a Sequential config: `{ class_name, config }`. */
export interface KerasLayerJson {
  readonly class_name: string;
  readonly config: { readonly name: string } & { readonly [key: string]: Json };
}

/** One entry of a weights manifest group: float32 only (what we write). */
export interface TfjsWeightSpec {
  /** `${layerName}/kernel` or `${layerName}/bias` */
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32';
}

/** The `model.json` of a TensorFlow.js Layers model, as written by `exportTfjsModel`. */
export interface TfjsModelJson {
  readonly modelTopology: {
    readonly class_name: 'Sequential';
    readonly config: { readonly name: string; readonly layers: KerasLayerJson[] };
    readonly keras_version: string;
    readonly backend: 'tensor_flow.js';
  };
  readonly format: 'layers-model';
  readonly generatedBy: string;
  readonly convertedBy: null;
  /** One group, one file: the weights in model.params order, float32 little-endian. */
  readonly weightsManifest: [
    { readonly paths: [typeof TFJS_WEIGHTS_FILE]; readonly weights: TfjsWeightSpec[] },
  ];
}

export interface TfjsExport {
  readonly modelJson: TfjsModelJson;
  /** The bytes of `weights.bin`: a copy of the parameters (4 bytes per float, little-endian). */
  readonly weightData: ArrayBuffer;
}

/** The weights file named in the manifest; `model.json` refers to it relative to its own URL. */
export const TFJS_WEIGHTS_FILE = 'weights.bin';

/** Written into `generatedBy`; `loadExportedModel` does not depend on it. */
export const TFJS_GENERATED_BY = 'PeerTrain @peertrain/engine';

// tfjs-layers writes `tfjs-layers <version>`; core and layers are released with one version.
const kerasVersion = (): string => `tfjs-layers ${tf.version_core}`;

const pair = (n: number): [number, number] => [n, n];

/** Initialisers as Keras would re-create the layer (ours: He before a relu, Glorot otherwise). */
function initializers(model: Model, index: number): { [key: string]: Json } {
  const he = model.spec.layers[index + 1]?.kind === 'relu';
  return {
    kernel_initializer: { class_name: he ? 'HeUniform' : 'GlorotUniform', config: { seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  };
}

/** Keras class and config (without name) of one of our layers. */
function kerasLayer(model: Model, spec: LayerSpec, index: number): [string, { [key: string]: Json }] {
  switch (spec.kind) {
    case 'dense':
      return [
        'Dense',
        { units: spec.units, activation: 'linear', use_bias: true, ...initializers(model, index) },
      ];
    case 'conv2d':
      return [
        'Conv2D',
        {
          filters: spec.filters,
          kernel_size: pair(spec.kernel),
          strides: pair(spec.stride),
          padding: spec.padding,
          data_format: 'channels_last',
          dilation_rate: [1, 1],
          activation: 'linear',
          use_bias: true,
          ...initializers(model, index),
        },
      ];
    case 'maxpool':
      return [
        'MaxPooling2D',
        {
          pool_size: pair(spec.size),
          strides: pair(spec.stride ?? spec.size),
          padding: 'valid',
          data_format: 'channels_last',
        },
      ];
    case 'flatten':
      // channels_last flattens [H, W, C] row-major, exactly our reshape
      return ['Flatten', { data_format: 'channels_last' }];
    case 'relu':
    case 'tanh':
      return ['Activation', { activation: spec.kind }];
    default: {
      const unknownSpec: never = spec;
      throw new ShapeError(`cannot export layer ${JSON.stringify(unknownSpec)}`);
    }
  }
}

/** Layer names: `dense_1`, `conv2d_1`, `relu_2`, ... numbered per kind; unique by construction. */
const NAME_PREFIX: Record<LayerSpec['kind'], string> = {
  dense: 'dense',
  conv2d: 'conv2d',
  maxpool: 'max_pooling2d',
  flatten: 'flatten',
  relu: 'relu',
  tanh: 'tanh',
};

/**
 * The model as a TensorFlow.js Layers `model.json` object and the bytes of its one weights file.
 * The Keras model takes inputs of shape [B, ...model.inputShape] (our `predict` also takes the flat
 * [B * inputSize]) and outputs class probabilities [B, classes]. ShapeError if `params` does not
 * have `model.paramCount` floats.
 */
export function exportTfjsModel(model: Model, params: Float32Array): TfjsExport {
  if (params.length !== model.paramCount) {
    throw new ShapeError(`model has ${model.paramCount} parameters, got ${params.length}`);
  }
  const counts = new Map<string, number>();
  const names = model.spec.layers.map((spec) => {
    const prefix = NAME_PREFIX[spec.kind];
    const n = (counts.get(prefix) ?? 0) + 1;
    counts.set(prefix, n);
    return `${prefix}_${n}`;
  });

  const layers: KerasLayerJson[] = model.spec.layers.map((spec, i) => {
    const [className, config] = kerasLayer(model, spec, i);
    const first = i === 0 ? { batch_input_shape: [null, ...model.inputShape], dtype: 'float32' } : {};
    return { class_name: className, config: { ...config, name: names[i]!, trainable: true, ...first } };
  });
  layers.push({
    class_name: 'Activation',
    config: { activation: 'softmax', name: 'softmax', trainable: true },
  });

  // ParamInfo names are "<layer>.<kind>.<kernel|bias>"; the Keras weight is "<layer name>/<kernel|bias>"
  const weights: TfjsWeightSpec[] = model.params.map((p) => ({
    name: `${names[p.layer]!}/${p.name.slice(p.name.lastIndexOf('.') + 1)}`,
    shape: [...p.shape],
    dtype: 'float32',
  }));

  return {
    modelJson: {
      modelTopology: {
        class_name: 'Sequential',
        config: { name: model.spec.name, layers },
        keras_version: kerasVersion(),
        backend: 'tensor_flow.js',
      },
      format: 'layers-model',
      generatedBy: TFJS_GENERATED_BY,
      convertedBy: null,
      weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights }],
    },
    // a copy (the caller keeps training `params`); Float32Array is little-endian on every platform tfjs runs on
    weightData: params.slice().buffer,
  };
}

/**
 * The same model as in-memory artifacts: `tf.loadLayersModel(tf.io.fromMemory(artifacts))`
 * loads it without any file or URL.
 */
export function tfjsModelArtifacts(model: Model, params: Float32Array): tf.io.ModelArtifacts {
  const { modelJson, weightData } = exportTfjsModel(model, params);
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    weightSpecs: modelJson.weightsManifest[0].weights,
    weightData,
  };
}

/** The two files to save side by side (download, CLI); `model.json` names `weights.bin`. */
export interface TfjsFiles {
  readonly 'model.json': string;
  readonly 'weights.bin': Uint8Array;
}

/** Browser-safe: the files' contents, ready for a Blob download or `fs.writeFile`. */
export function exportFiles(model: Model, params: Float32Array): TfjsFiles {
  const { modelJson, weightData } = exportTfjsModel(model, params);
  return { 'model.json': JSON.stringify(modelJson), [TFJS_WEIGHTS_FILE]: new Uint8Array(weightData) };
}
