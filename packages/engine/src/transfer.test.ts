import { afterAll, describe, expect, it, vi } from 'vitest';
import '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf.ts';
import { readInto, tensorOf } from './transfer.ts';

// Both backends a worker may train on without a GPU: wasm (the heap read and written in place)
// and cpu (tfjs's own paths, with a copy on the way in).
describe.each(['wasm', 'cpu'])('transfer on %s', (backend) => {
  afterAll(() => tf.setBackend('cpu'));

  it('uploads a view, and later changes to its array do not reach the tensor', async () => {
    await tf.setBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    const all = Float32Array.from({ length: 10 }, (_, i) => i + 0.5);
    const t = tensorOf(all.subarray(2, 8), [2, 3]);
    all.fill(-1);
    expect(Array.from(await t.data())).toEqual([2.5, 3.5, 4.5, 5.5, 6.5, 7.5]);
    t.dispose();
  });

  it('reads into the caller buffer at an offset, leaving the rest alone, and keeps no tensor', async () => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.tidy(() => tf.mul(tf.tensor2d([1, 2, 3, 4], [2, 2]), 2)); // computed, not uploaded
    const out = new Float32Array(9).fill(9);
    const read = vi.spyOn(a, 'data');
    await Promise.all([readInto(a, out, 1), readInto(b, out, 4)]);
    expect(Array.from(out)).toEqual([9, 1, 2, 3, 2, 4, 6, 8, 9]);
    // wasm: straight from the heap, no fresh buffer from data(); cpu: through data()
    expect(read).toHaveBeenCalledTimes(backend === 'wasm' ? 0 : 1);
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a tensor that is not float32 by name', async () => {
    await tf.setBackend(backend);
    const t = tf.tensor1d([1, 2], 'int32');
    await expect(readInto(t, new Float32Array(2))).rejects.toThrow(/float32/);
    t.dispose();
  });
});
