import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs';
import { ConfigError } from '@peertrain/protocol';
import type { ModelSpec } from '@peertrain/protocol';
import { activateBackend } from './backends.ts';
import { ShapeError } from './errors.ts';
import { exportFiles, exportTfjsModel, tfjsModelArtifacts } from './export.ts';
import type { KerasLayerJson, TfjsFiles, TfjsModelJson } from './export.ts';
import { loadExportedModel } from './export-load.ts';
import { buildModel } from './model.ts';
import type { Model } from './model.ts';
import { MODEL_PRESETS, modelPreset } from '@peertrain/protocol';
import { expectClose, randomArray } from './testing.ts';
import { tf } from './tf.ts';

// Every layer option the exporter writes: tanh, 'valid' padding, conv stride 2, pool stride != size.
const mixed: ModelSpec = {
  name: 'mixed-cnn',
  inputShape: [11, 11, 2],
  classes: 3,
  layers: [
    { kind: 'conv2d', filters: 3, kernel: 3, stride: 2, padding: 'same' }, // [6, 6, 3]
    { kind: 'tanh' },
    { kind: 'maxpool', size: 2, stride: 1 }, // [5, 5, 3]
    { kind: 'conv2d', filters: 4, kernel: 2, stride: 1, padding: 'valid' }, // [4, 4, 4]
    { kind: 'relu' },
    { kind: 'maxpool', size: 3 }, // [1, 1, 4]
    { kind: 'flatten' },
    { kind: 'dense', units: 5 },
    { kind: 'tanh' },
    { kind: 'dense', units: 3 },
  ],
};

/** Seeded parameters with non-zero biases (initParams leaves them at zero). */
function seededParams(model: Model, seed: number): Float32Array {
  const p = model.initParams(seed);
  const noise = randomArray(p.length, seed + 1, 0.05);
  return p.map((v, i) => v + noise[i]!);
}

/** The tfjs Layers model's probabilities for flat inputs x [n * inputSize]. */
async function tfjsPredict(loaded: tfl.LayersModel, model: Model, x: Float32Array): Promise<Float32Array> {
  const n = x.length / model.inputSize;
  const probs = tf.tidy(() => loaded.predict(tf.tensor(x, [n, ...model.inputShape])) as tf.Tensor); // [n, classes]
  try {
    expect(probs.shape).toEqual([n, model.classes]);
    return await probs.data<'float32'>();
  } finally {
    probs.dispose();
  }
}

/** Bit-exact equality of two float arrays (NaN payloads and -0 included); toEqual is slow on 400 KB. */
function expectSameBits(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  const [x, y] = [
    new Uint32Array(a.buffer, a.byteOffset, a.length),
    new Uint32Array(b.buffer, b.byteOffset, b.length),
  ];
  const at = x.findIndex((v, i) => v !== y[i]);
  expect(at, `first differing float at ${at}`).toBe(-1);
}

/** Serves `files` to tf.io.http as a web server would (paths relative to model.json). */
function fakeFetch(files: TfjsFiles): typeof fetch {
  return (input) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const name = url.slice(url.lastIndexOf('/') + 1);
    const body =
      name === 'model.json' ? files['model.json'] : name === 'weights.bin' ? files['weights.bin'] : undefined;
    return Promise.resolve(
      body === undefined
        ? new Response('missing', { status: 404 })
        : new Response(new Blob([body as BlobPart])),
    );
  };
}

/** A mutable deep copy of the exported model.json. */
const copyJson = (json: TfjsModelJson): TfjsModelJson => JSON.parse(JSON.stringify(json)) as TfjsModelJson;
/** A weight spec of a copied model.json, writable. */
const weightSpec = (json: TfjsModelJson, i: number) =>
  json.weightsManifest[0].weights[i] as { name: string; shape: number[] };

beforeAll(async () => {
  await activateBackend('cpu');
});

describe('exportTfjsModel', () => {
  it('writes unique layer names and weight names tfjs-layers looks up', () => {
    const model = buildModel(modelPreset('mlp'));
    const { modelJson, weightData } = exportTfjsModel(model, model.initParams(1));
    const layers = modelJson.modelTopology.config.layers;
    expect(layers.map((l) => l.class_name)).toEqual(['Dense', 'Activation', 'Dense', 'Activation']);
    expect(layers.map((l) => l.config.name)).toEqual(['dense_1', 'relu_1', 'dense_2', 'softmax']);
    expect(layers[0]!.config.batch_input_shape).toEqual([null, 784]);
    expect(layers[3]!.config.activation).toBe('softmax');
    expect(modelJson.format).toBe('layers-model');
    expect(modelJson.modelTopology.backend).toBe('tensor_flow.js');
    expect(modelJson.weightsManifest).toEqual([
      {
        paths: ['weights.bin'],
        weights: [
          { name: 'dense_1/kernel', shape: [784, 128], dtype: 'float32' },
          { name: 'dense_1/bias', shape: [128], dtype: 'float32' },
          { name: 'dense_2/kernel', shape: [128, 10], dtype: 'float32' },
          { name: 'dense_2/bias', shape: [10], dtype: 'float32' },
        ],
      },
    ]);
    expect(weightData.byteLength).toBe(4 * model.paramCount);
    for (const spec of [...MODEL_PRESETS.map(modelPreset), mixed]) {
      const m = buildModel(spec);
      const names = exportTfjsModel(m, m.initParams(1)).modelJson.modelTopology.config.layers.map(
        (l) => l.config.name,
      );
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('copies the parameters and refuses a wrong count', () => {
    const model = buildModel(modelPreset('mlp'));
    const params = seededParams(model, 3);
    const { weightData } = exportTfjsModel(model, params);
    params[0] = 42; // training goes on: the export must not change
    expect(new Float32Array(weightData)[0]).not.toBe(42);
    expect(() => exportTfjsModel(model, params.subarray(1))).toThrow(ShapeError);
  });
});

describe('tf.loadLayersModel reads the export', () => {
  const cases = [
    ...MODEL_PRESETS.map((name) => ({ name, spec: modelPreset(name) })),
    { name: 'mixed', spec: mixed },
  ];
  it.each(cases)('$name: same probabilities as model.predict, no leaked tensors', async ({ spec }) => {
    const model = buildModel(spec);
    const params = seededParams(model, 11);
    const x = randomArray(5 * model.inputSize, 12);
    const ours = await model.predict(params, x);

    const before = tf.memory().numTensors;
    const loaded = await tfl.loadLayersModel(tfl.io.fromMemory(tfjsModelArtifacts(model, params)));
    try {
      expectClose(await tfjsPredict(loaded, model, x), ours, 1e-5, spec.name);
    } finally {
      loaded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads model.json and weights.bin over http, as a page would', async () => {
    const model = buildModel(modelPreset('cnn'));
    const params = seededParams(model, 5);
    const files = exportFiles(model, params);
    const x = randomArray(3 * model.inputSize, 6);
    const before = tf.memory().numTensors;
    const loaded = await tfl.loadLayersModel(
      tfl.io.http('https://example.test/models/cnn/model.json', { fetchFunc: fakeFetch(files) }),
    );
    try {
      expectClose(await tfjsPredict(loaded, model, x), await model.predict(params, x), 1e-5);
    } finally {
      loaded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('loadExportedModel', () => {
  it.each([...MODEL_PRESETS, 'mixed'] as const)('%s: spec and parameters round-trip bit-exactly', (name) => {
    const model = buildModel(name === 'mixed' ? mixed : modelPreset(name));
    const params = seededParams(model, 21);
    params[1] = NaN; // even odd values come back as the same bits
    params[2] = -0;
    const { modelJson, weightData } = exportTfjsModel(model, params);
    const back = loadExportedModel(modelJson, weightData);
    expect(back.model.spec).toEqual(model.spec);
    expectSameBits(back.params, params);

    // the files as saved: model.json text and the weights.bin bytes
    const files = exportFiles(model, params);
    const fromFiles = loadExportedModel(files['model.json'], files['weights.bin']);
    expect(fromFiles.model.spec).toEqual(model.spec);
    expectSameBits(fromFiles.params, params);
  });

  it('reads a model written by tfjs-layers itself (fused activations, no bias)', async () => {
    const keras = tfl.sequential({
      name: 'from-tfjs',
      layers: [
        tfl.layers.conv2d({
          inputShape: [6, 6, 1],
          filters: 2,
          kernelSize: 3,
          activation: 'relu',
          padding: 'same',
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 4, activation: 'tanh', useBias: false }),
        tfl.layers.reLU(),
        tfl.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await keras.save(
      tfl.io.withSaveHandler((a) => {
        artifacts = a;
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
      }),
    );
    const weightData = artifacts?.weightData;
    if (artifacts === undefined || weightData === undefined) throw new Error('model.save gave no artifacts');
    const { model, params } = loadExportedModel(artifacts, weightData);
    expect(model.spec).toEqual({
      name: 'from-tfjs',
      inputShape: [6, 6, 1],
      classes: 3,
      layers: [
        { kind: 'conv2d', filters: 2, kernel: 3, stride: 1, padding: 'same' },
        { kind: 'relu' },
        { kind: 'maxpool', size: 2 },
        { kind: 'flatten' },
        { kind: 'dense', units: 4 },
        { kind: 'tanh' },
        { kind: 'relu' },
        { kind: 'dense', units: 3 },
      ],
    });
    // the missing bias reads as zeros
    const bias = model.params[3]!; // conv kernel, conv bias, dense kernel, dense bias
    expect(Array.from(params.subarray(bias.offset, bias.offset + bias.size))).toEqual([0, 0, 0, 0]);
    const x = randomArray(4 * model.inputSize, 9);
    expectClose(await tfjsPredict(keras, model, x), await model.predict(params, x), 1e-5);
    keras.dispose();
  });

  it('reads the Keras 2 (Python converter) layout: model_config and an InputLayer', async () => {
    const model = buildModel(modelPreset('mlp'));
    const params = seededParams(model, 31);
    const { modelJson, weightData } = exportTfjsModel(model, params);
    const [first, ...rest] = modelJson.modelTopology.config.layers;
    const pythonic = {
      ...modelJson,
      convertedBy: 'TensorFlow.js Converter',
      modelTopology: {
        keras_version: '2.15.0',
        backend: 'tensorflow',
        model_config: {
          class_name: 'Sequential',
          config: {
            name: 'sequential',
            layers: [
              {
                class_name: 'InputLayer',
                config: { batch_input_shape: [null, 784], dtype: 'float32', sparse: false, name: 'input_1' },
              },
              first,
              ...rest,
            ],
          },
        },
      },
    };
    const back = loadExportedModel(pythonic, weightData);
    expect(back.model.spec).toEqual({ ...model.spec, name: 'sequential' });
    expectSameBits(back.params, params);
    // and tfjs reads the same JSON
    const loaded = await tfl.loadLayersModel(
      tfl.io.http('https://example.test/model.json', {
        fetchFunc: fakeFetch({
          'model.json': JSON.stringify(pythonic),
          'weights.bin': new Uint8Array(weightData),
        }),
      }),
    );
    const x = randomArray(2 * model.inputSize, 4);
    expectClose(await tfjsPredict(loaded, model, x), await model.predict(params, x), 1e-5);
    loaded.dispose();
  });

  describe('refuses what it cannot read, with a named error', () => {
    const model = buildModel(modelPreset('cnn'));
    const { modelJson, weightData } = exportTfjsModel(model, seededParams(model, 41));
    const layer = (json: TfjsModelJson, i: number): KerasLayerJson => json.modelTopology.config.layers[i]!;
    const withLayer = (i: number, patch: (l: KerasLayerJson) => KerasLayerJson): TfjsModelJson => {
      const json = copyJson(modelJson);
      json.modelTopology.config.layers[i] = patch(layer(json, i));
      return json;
    };
    const expectError = (
      json: unknown,
      data: ArrayBuffer | Uint8Array,
      cls: typeof ConfigError | typeof ShapeError,
      message: RegExp,
    ): void => {
      let caught: unknown;
      try {
        loadExportedModel(json, data);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(cls);
      expect((caught as Error).name).toBe(cls.name);
      expect((caught as Error).message).toMatch(message);
    };

    it('an unknown class_name', () => {
      const json = withLayer(2, (l) => ({ ...l, class_name: 'AveragePooling2D' }));
      expectError(json, weightData, ConfigError, /AveragePooling2D.*unsupported layer class/);
    });

    it('weight bytes of the wrong length', () => {
      expectError(modelJson, weightData.slice(4), ShapeError, /take 36392 bytes, the weight data has 36388/);
      const longer = new Uint8Array(weightData.byteLength + 4);
      longer.set(new Uint8Array(weightData));
      expectError(modelJson, longer, ShapeError, /36392 bytes.* 36396/);
    });

    it('a weight whose shape does not fit the layer', () => {
      const json = copyJson(modelJson);
      weightSpec(json, 0).shape = [3, 3, 8, 1]; // same size, transposed channels
      expectError(
        json,
        weightData,
        ShapeError,
        /conv2d_1\/kernel is \[3, 3, 8, 1\], the model needs \[3, 3, 1, 8\]/,
      );
    });

    it('a manifest that does not name the layer weights', () => {
      const json = copyJson(modelJson);
      weightSpec(json, 1).name = 'conv2d_9/bias';
      expectError(json, weightData, ConfigError, /conv2d_1\/bias is not in the manifest/);
    });

    it('options our layers do not have', () => {
      const cases: [TfjsModelJson, RegExp][] = [
        [withLayer(1, (l) => ({ ...l, config: { ...l.config, activation: 'elu' } })), /activation "elu"/],
        [withLayer(0, (l) => ({ ...l, config: { ...l.config, dilation_rate: [2, 2] } })), /dilated/],
        [withLayer(0, (l) => ({ ...l, config: { ...l.config, kernel_size: [3, 1] } })), /only square/],
        [withLayer(2, (l) => ({ ...l, config: { ...l.config, padding: 'same' } })), /only valid/],
        [
          withLayer(6, (l) => ({ ...l, config: { ...l.config, data_format: 'channels_first' } })),
          /channels_last/,
        ],
        [
          withLayer(1, (l) => ({ ...l, config: { ...l.config, activation: 'softmax' } })),
          /follows the softmax/,
        ],
        [withLayer(3, (l) => ({ ...l, config: { ...l.config, name: 'conv2d_1' } })), /duplicate layer name/],
        [
          withLayer(0, (l) => ({ ...l, config: { ...l.config, batch_input_shape: [null, 28, 28] } })),
          /input/,
        ],
      ];
      for (const [json, message] of cases) expectError(json, weightData, ConfigError, message);
    });

    it('not a Sequential layers model', () => {
      expectError('{ not json', weightData, ConfigError, /not JSON/);
      expectError({ ...modelJson, format: 'graph-model' }, weightData, ConfigError, /only 'layers-model'/);
      const functional = copyJson(modelJson);
      (functional.modelTopology as { class_name: string }).class_name = 'Functional';
      expectError(functional, weightData, ConfigError, /only Sequential/);
      const int8 = copyJson(modelJson);
      (int8.weightsManifest[0].weights[0] as { dtype: string }).dtype = 'int32';
      expectError(int8, weightData, ConfigError, /dtype int32, only float32/);
    });
  });
});
