import { describe, expect, it } from 'vitest';
import { createCompressor, decode, encodeFp16, encodeSparse, payloadCodec } from '@peertrain/compress';
import type { PayloadCompressor } from '@peertrain/compress';
import { ProtocolError, modelPreset, zeroGatedOutput } from '@peertrain/protocol';
import { buildModel, tf } from '@peertrain/engine';
import { encodeTensor, tensorValues, wireFormats } from './pipeline.ts';
import { gateGradient, nonZeroMask } from './zero-gate.ts';

const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
const fp16 = createCompressor({ kind: 'fp16' }, { length: 0, seed: 1 }) as PayloadCompressor;
const int8 = createCompressor({ kind: 'int8' }, { length: 0, seed: 1 }) as PayloadCompressor;

describe('zeroGatedOutput', () => {
  it('a relu, or a max-pool or flatten over one, gates; the data, dense, conv and tanh do not', () => {
    const cnn = modelPreset('cnn').layers; // conv relu pool conv relu pool flatten dense
    expect([...Array(9).keys()].map((end) => zeroGatedOutput(cnn, end))).toEqual([
      false, // the data
      false, // conv
      true, // relu
      true, // max-pool of a relu
      false, // conv
      true,
      true,
      true, // flatten of a max-pool of a relu
      false, // dense
    ]);
    expect(zeroGatedOutput([{ kind: 'dense', units: 4 }, { kind: 'tanh' }], 2)).toBe(false);
    expect(zeroGatedOutput([{ kind: 'maxpool', size: 2 }], 1)).toBe(false);
  });

  it("matches what the engine's backward does: a zero of a gated output passes no gradient", async () => {
    // The cnn's first three layers on a random image: wherever the max-pool's output is 0, its
    // gradient does not reach the conv's output gradient (and so no parameter).
    const model = buildModel(modelPreset('cnn'));
    const stage = model.stage(0, 3);
    const params = model.initParams(5);
    const w = stage.uploadParams(params.subarray(stage.paramOffset, stage.paramOffset + stage.paramCount));
    const x = tf.randomUniform([2, 28, 28, 1], -1, 1, 'float32', 3);
    const f = stage.forward(x, w);
    const y = f.y.dataSync() as Float32Array;
    const zeros = y.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(50); // a pooled 0 needs a window of four ReLU zeros
    const dyDense = Float32Array.from(y, (_, i) => Math.sin(i + 1));
    const dyGated = gateGradient(dyDense.slice(), nonZeroMask(y));
    const grads = async (dy: Float32Array): Promise<number[]> => {
      const b = stage.backward(tf.tensor(dy, f.y.shape), f.saved, w, { needInputGrad: false });
      const out = await Promise.all(b.grads.map((t) => t.data()));
      tf.dispose(b.grads);
      return out.flatMap((a) => bits(a as Float32Array));
    };
    expect(await grads(dyGated)).toEqual(await grads(dyDense));
    // A gradient gated at a non-zero output would change them.
    const wrong = dyDense.slice();
    wrong[y.findIndex((v) => v > 0)] = 0;
    expect(await grads(wrong)).not.toEqual(await grads(dyDense));
    tf.dispose([x, f.y, ...f.saved.flat(), ...w]);
  });
});

describe('gateGradient', () => {
  it('zeroes the finite values where the activation was 0 or -0, in place', () => {
    const act = Float32Array.from([0, 1, -0, 2, 0, 0, 3, ...new Array<number>(40).fill(0), 5]);
    const dx = Float32Array.from(act, (_, i) => i + 0.5);
    dx[4] = Infinity;
    dx[5] = NaN;
    const out = gateGradient(dx, nonZeroMask(act));
    expect(out).toBe(dx);
    expect([...out.slice(0, 7)]).toEqual([0, 1.5, 0, 3.5, Infinity, NaN, 6.5]);
    expect(out.slice(7, 47).every((v) => v === 0)).toBe(true);
    expect(out[47]).toBe(47.5);
    expect(() => gateGradient(new Float32Array(33), new Int32Array(1))).toThrow(RangeError);
  });
});

describe('the tensors between stages', () => {
  const relu = Float32Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? 0 : Math.cos(i)));
  relu[1] = -0;

  it('skipping zeros: a mostly-zero tensor goes as a zero-skipping payload, a dense one as before', () => {
    const plain = encodeTensor(relu, null, true);
    expect(plain.dtype).toBe('uint8');
    expect(payloadCodec(plain.payload)).toBe('sparse');
    expect(bits(tensorValues(plain.dtype, plain.payload, wireFormats(null, true)))).toEqual(bits(relu));
    const half = encodeTensor(relu, fp16, true);
    expect(payloadCodec(half.payload)).toBe('sparse-fp16');
    expect(bits(tensorValues(half.dtype, half.payload, wireFormats(fp16, true)))).toEqual(
      bits(decode(encodeFp16(relu))),
    );
    const dense = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i) + 2);
    expect(encodeTensor(dense, null, true).dtype).toBe('float32');
    expect(payloadCodec(encodeTensor(dense, fp16, true).payload)).toBe('fp16');
    expect(encodeTensor(relu, null, false).dtype).toBe('float32');
    expect(payloadCodec(encodeTensor(relu, fp16, false).payload)).toBe('fp16');
    expect(payloadCodec(encodeTensor(relu, int8, true).payload)).toBe('int8');
  });

  it('a receiver refuses what its run does not send, by name', () => {
    const sparse = encodeSparse(relu, 'sparse');
    const raw = new Uint8Array(relu.buffer);
    expect(() => tensorValues('uint8', sparse, wireFormats(null, false))).toThrow(ProtocolError);
    expect(() => tensorValues('uint8', sparse, wireFormats(null, false))).toThrow(
      /expected float32 activations, got a sparse payload/,
    );
    expect(() => tensorValues('float32', raw, wireFormats(fp16, true))).toThrow(
      /expected fp16 or sparse-fp16 activations, got float32/,
    );
    expect(() => tensorValues('uint8', sparse, wireFormats(int8, true))).toThrow(ProtocolError);
    expect(() => tensorValues('int32', raw, wireFormats(null, true))).toThrow(ProtocolError);
  });
});
