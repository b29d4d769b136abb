// Our own reader of TensorFlow.js Layers models: a Keras Sequential topology and its weights back to
// a ModelSpec and the flat parameter array. It reads what `exportTfjsModel` writes and the common
// subset of what Keras / tfjs-layers write (see README: InputLayer, Dense, Conv2D, MaxPooling2D,
// Flatten, Activation, ReLU, Softmax, fused activations, use_bias false). Anything else is refused
// with a named error rather than approximated: ConfigError for a topology or manifest we cannot
// read, ShapeError when the bytes or shapes do not add up.
import { ConfigError } from '@peertrain/protocol';
import type { LayerSpec, ModelSpec } from '@peertrain/protocol';
import { ShapeError } from './errors.ts';
import { buildLayers } from './layers.ts';
import { buildModel } from './model.ts';
import type { Model } from './model.ts';

export interface LoadedModel {
  readonly model: Model;
  readonly params: Float32Array;
}

/** The bytes of the weight files, in manifest order (one buffer, a view, or one buffer per file). */
export type WeightBytes = ArrayBuffer | ArrayBufferView | readonly ArrayBuffer[];

type Obj = { readonly [key: string]: unknown };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const fail = (issue: string): never => {
  throw new ConfigError('unreadable tfjs model', [issue]);
};

/** A weight of the manifest: where its float32 values start in the concatenated bytes. */
interface WeightEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly byteOffset: number;
  used: boolean;
}

/** Our layers with parameters, and the Keras weights that hold them (bias null: zeros). */
interface ParamSource {
  readonly kernel: string;
  readonly bias: string | null;
}

const isDim = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

function shapeOf(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    return fail(`${what}: shape ${JSON.stringify(v)} is not a list of sizes`);
  }
  return v as number[];
}

/** Keras writes sizes as `k` or `[k, k]`; we only have square windows. */
function square(v: unknown, what: string, fallback?: number): number {
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    return fail(`${what} is missing`);
  }
  if (isDim(v)) return v;
  if (Array.isArray(v) && v.length === 2 && isDim(v[0]) && v[0] === v[1]) return v[0];
  return fail(`${what} ${JSON.stringify(v)}: only square sizes are supported`);
}

function weightSpecsOf(json: Obj): unknown[] {
  if (Array.isArray(json.weightsManifest)) {
    return json.weightsManifest.flatMap((group: unknown, i) => {
      if (!isObj(group) || !Array.isArray(group.weights))
        return fail(`weightsManifest[${i}] has no weights list`);
      return group.weights as unknown[];
    });
  }
  // tf.io.ModelArtifacts (what model.save hands to a save handler) lists them directly
  if (Array.isArray(json.weightSpecs)) return json.weightSpecs as unknown[];
  return fail('no weightsManifest');
}

/** Reads the manifest and checks the bytes hold exactly its float32 weights. */
function readManifest(json: Obj, byteLength: number): Map<string, WeightEntry> {
  const entries = new Map<string, WeightEntry>();
  let at = 0;
  weightSpecsOf(json).forEach((w, i) => {
    if (!isObj(w) || typeof w.name !== 'string') return fail(`weight ${i} has no name`);
    if (w.quantization !== undefined) return fail(`weight ${w.name}: quantized weights are not supported`);
    if (w.dtype !== 'float32') return fail(`weight ${w.name}: dtype ${String(w.dtype)}, only float32`);
    if (entries.has(w.name)) return fail(`duplicate weight name ${w.name}`);
    const shape = shapeOf(w.shape, `weight ${w.name}`);
    entries.set(w.name, { name: w.name, shape, byteOffset: at, used: false });
    at += 4 * shape.reduce((a, b) => a * b, 1);
  });
  if (at !== byteLength) {
    throw new ShapeError(`the manifest's weights take ${at} bytes, the weight data has ${byteLength}`);
  }
  // tfjs-layers also accepts "layer/cell/weight" for "layer/weight" (TF 2.2 names): same here
  for (const e of [...entries.values()]) {
    const tokens = e.name.split('/');
    if (tokens.length < 3) continue;
    const short = [...tokens.slice(0, -2), tokens[tokens.length - 1]!].join('/');
    if (!entries.has(short)) entries.set(short, e);
  }
  return entries;
}

/** The Sequential layer list, unwrapping Keras' full-model `model_config`. */
function sequentialLayers(json: Obj): { name: string; layers: unknown[] } {
  if (json.format !== undefined && json.format !== 'layers-model') {
    fail(`format ${JSON.stringify(json.format)}: only 'layers-model' (a graph model has no Keras topology)`);
  }
  let topology = json.modelTopology;
  if (isObj(topology) && isObj(topology.model_config)) topology = topology.model_config;
  if (!isObj(topology)) return fail('no modelTopology');
  if (topology.class_name !== 'Sequential') {
    return fail(`model class ${JSON.stringify(topology.class_name)}: only Sequential models`);
  }
  const config = topology.config;
  const layers = Array.isArray(config) ? config : isObj(config) ? config.layers : undefined;
  if (!Array.isArray(layers) || layers.length === 0) return fail('the Sequential config has no layers');
  const name =
    isObj(config) && typeof config.name === 'string' && config.name !== '' ? config.name : 'imported';
  return { name, layers: layers as unknown[] };
}

/**
 * A Keras layer's per-sample input shape when it declares one (Keras 2 writes batch_input_shape,
 * Keras 3 batch_shape: [null, ...per sample]), else the shape seen so far.
 */
function batchInputShape(c: Obj, what: string, seen: number[] | undefined): number[] | undefined {
  const batchShape = c.batch_input_shape ?? c.batch_shape;
  if (batchShape === undefined || batchShape === null) return seen;
  const dims = Array.isArray(batchShape) ? batchShape.slice(1) : [];
  if (!Array.isArray(batchShape) || dims.length === 0 || !dims.every(isDim)) {
    fail(`${what}: batch input shape ${JSON.stringify(batchShape)} is not [null, ...sizes]`);
  }
  // Keras 2 may repeat the InputLayer's shape on the next layer; a different one is a second input
  if (seen !== undefined && JSON.stringify(seen) !== JSON.stringify(dims)) {
    fail(`${what}: a second input shape [${dims.join(', ')}]`);
  }
  return dims as number[];
}

/** A Keras Conv2D config as our conv2d spec (square kernel and stride, no dilation or groups). */
function conv2dSpec(c: Obj, what: string): LayerSpec {
  if (!isDim(c.filters)) fail(`${what}: filters ${JSON.stringify(c.filters)}`);
  if (square(c.dilation_rate, `${what}: dilation_rate`, 1) !== 1) fail(`${what}: dilated convolution`);
  if (c.groups !== undefined && c.groups !== null && c.groups !== 1) fail(`${what}: grouped convolution`);
  const padding = c.padding ?? 'valid';
  if (padding !== 'same' && padding !== 'valid') fail(`${what}: padding ${JSON.stringify(padding)}`);
  return {
    kind: 'conv2d',
    filters: c.filters as number,
    kernel: square(c.kernel_size, `${what}: kernel_size`),
    stride: square(c.strides, `${what}: strides`, 1),
    padding: padding as 'same' | 'valid',
  };
}

/** Walks the Keras layers: our layer specs, the input shape, and where each layer's weights are. */
function translate(kerasLayers: readonly unknown[]): {
  inputShape: number[];
  layers: LayerSpec[];
  sources: ParamSource[];
} {
  const layers: LayerSpec[] = [];
  const sources: ParamSource[] = [];
  const names = new Set<string>();
  let inputShape: number[] | undefined;
  let softmax = false; // seen: must be the last thing

  kerasLayers.forEach((entry, i) => {
    if (!isObj(entry) || typeof entry.class_name !== 'string' || !isObj(entry.config)) {
      return fail(`layer ${i} is not { class_name, config }`);
    }
    const cls = entry.class_name;
    const c = entry.config;
    const name = typeof c.name === 'string' ? c.name : fail(`layer ${i} (${cls}) has no name`);
    const what = `layer ${i} (${cls} '${name}')`;
    if (names.has(name)) fail(`${what}: duplicate layer name`);
    names.add(name);
    if (softmax) fail(`${what}: follows the softmax (only a final softmax is supported)`);
    if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') {
      fail(`${what}: data_format ${JSON.stringify(c.data_format)}, only channels_last`);
    }
    inputShape = batchInputShape(c, what, inputShape);
    if (inputShape === undefined) fail(`${what}: the first layer has no batch_input_shape`);

    /** A fused activation ('linear' or none: nothing). */
    const activation = (act: unknown): void => {
      if (act === undefined || act === null || act === 'linear') return;
      if (act === 'relu' || act === 'tanh') layers.push({ kind: act });
      else if (act === 'softmax') softmax = true;
      else fail(`${what}: activation ${JSON.stringify(act)} (supported: linear, relu, tanh, final softmax)`);
    };
    const bias = (): string | null => (c.use_bias === false ? null : `${name}/bias`);

    switch (cls) {
      case 'InputLayer':
        if (i !== 0) fail(`${what}: an InputLayer after the first layer`);
        break;
      case 'Dense':
        if (!isDim(c.units)) fail(`${what}: units ${JSON.stringify(c.units)}`);
        layers.push({ kind: 'dense', units: c.units as number });
        sources.push({ kernel: `${name}/kernel`, bias: bias() });
        activation(c.activation);
        break;
      case 'Conv2D':
        layers.push(conv2dSpec(c, what));
        sources.push({ kernel: `${name}/kernel`, bias: bias() });
        activation(c.activation);
        break;
      case 'MaxPooling2D': {
        if ((c.padding ?? 'valid') !== 'valid')
          fail(`${what}: padding ${JSON.stringify(c.padding)}, only valid`);
        const size = square(c.pool_size, `${what}: pool_size`, 2);
        const stride = square(c.strides, `${what}: strides`, size);
        layers.push(stride === size ? { kind: 'maxpool', size } : { kind: 'maxpool', size, stride });
        break;
      }
      case 'Flatten':
        layers.push({ kind: 'flatten' });
        break;
      case 'Activation':
        activation(c.activation);
        break;
      case 'ReLU': {
        const plain =
          (c.max_value === undefined || c.max_value === null) &&
          (c.negative_slope ?? 0) === 0 &&
          (c.threshold ?? 0) === 0;
        if (!plain) fail(`${what}: only a plain ReLU (no max_value, negative_slope, threshold)`);
        layers.push({ kind: 'relu' });
        break;
      }
      case 'Softmax':
        if (c.axis !== undefined && c.axis !== -1)
          fail(`${what}: softmax over axis ${JSON.stringify(c.axis)}`);
        softmax = true;
        break;
      default:
        fail(
          `${what}: unsupported layer class (supported: InputLayer, Dense, Conv2D, MaxPooling2D, Flatten, Activation, ReLU, Softmax)`,
        );
    }
  });
  if (layers.length === 0) fail('no layers besides the input and the softmax');
  return { inputShape: inputShape!, layers, sources };
}

function concatBytes(data: WeightBytes): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.reduce((a, b) => a + b.byteLength, 0));
  let at = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out;
}

/**
 * Reads a TensorFlow.js Layers model (the parsed `model.json`, its text, or `tf.io.ModelArtifacts`)
 * and its weight bytes back into our model and flat parameters, bit for bit. A final softmax is
 * dropped (our model outputs logits and applies the softmax in `predict` and the loss); a model
 * without one is read as outputting logits. ConfigError for a topology or manifest it cannot read,
 * ShapeError when the bytes or a weight's shape do not match the model.
 */
export function loadExportedModel(modelJson: unknown, weightData: WeightBytes): LoadedModel {
  let json = modelJson;
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json) as unknown;
    } catch (e) {
      fail(`model.json is not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  if (!isObj(json)) return fail('model.json is not an object');
  const bytes = concatBytes(weightData);
  const { name, layers: kerasLayers } = sequentialLayers(json);
  const weights = readManifest(json, bytes.byteLength);
  const { inputShape, layers, sources } = translate(kerasLayers);

  const built = buildLayers(inputShape, layers); // ConfigError when shapes do not chain
  const out = built[built.length - 1]!.outputShape;
  if (out.length !== 1) fail(`the model outputs [${out.join(', ')}] per sample, not a class vector`);
  const spec: ModelSpec = { name, inputShape, layers, classes: out[0]! };
  const model = buildModel(spec);

  const params = new Float32Array(model.paramCount);
  const paramBytes = new Uint8Array(params.buffer);
  const take = (weightName: string | null, p: Model['params'][number] | undefined): void => {
    if (p === undefined) throw new ShapeError(`no parameter of ours for ${String(weightName)}`); // unreachable
    if (weightName === null) return; // use_bias false: the bias stays zero
    const w = weights.get(weightName) ?? fail(`weight ${weightName} is not in the manifest`);
    if (w.shape.length !== p.shape.length || w.shape.some((d, i) => d !== p.shape[i])) {
      throw new ShapeError(
        `weight ${weightName} is [${w.shape.join(', ')}], the model needs [${p.shape.join(', ')}]`,
      );
    }
    // bytes as they are (float32 little-endian, like tfjs): bit-exact, NaN payloads included
    paramBytes.set(bytes.subarray(w.byteOffset, w.byteOffset + 4 * p.size), 4 * p.offset);
    w.used = true;
  };
  // model.params lists kernel then bias for each layer with parameters, in layer order
  sources.forEach((s, i) => {
    take(s.kernel, model.params[2 * i]);
    take(s.bias, model.params[2 * i + 1]);
  });
  const unused = [...new Set(weights.values())].filter((w) => !w.used).map((w) => w.name);
  if (unused.length > 0) fail(`weights with no layer: ${unused.join(', ')}`);
  return { model, params };
}
