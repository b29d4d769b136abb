import { describe, expect, it } from 'vitest';
import { modelPreset } from '@peertrain/protocol';
import { buildModel } from './model.ts';
import { tf } from './tf.ts';
import { randomArray } from './testing.ts';

// The layered backward (hooks) must give lossAndGrads' bits, hand every layer out last to first
// with its own slice, let timers run between layers, and leave no tensor behind.

describe('lossAndGrads with backward hooks', () => {
  it('cnn: same bits as without hooks, layers last to first, timers run between layers', async () => {
    const model = buildModel(modelPreset('cnn'));
    const params = model.initParams(3);
    const b = 4;
    const x = randomArray(b * model.inputSize, 9);
    const labels = [1, 7, 3, 0];
    const plain = await model.lossAndGrads(params, x, labels);
    const before = tf.memory().numTensors;
    const events: string[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const seen = new Float32Array(model.paramCount);
    let ticksAtFirst = -1;
    try {
      const layered = await model.lossAndGrads(params, x, labels, undefined, {
        layerStart: (i) => events.push(`start ${i}`),
        layerGrads(i, offset, grads) {
          if (ticksAtFirst < 0) ticksAtFirst = ticks;
          const layer = model.layers[i]!;
          expect(offset).toBe(layer.paramOffset);
          expect(grads.length).toBe(layer.paramCount);
          seen.set(grads, offset); // a copy now: the hook must get the final values
          events.push(`grads ${i}`);
        },
      });
      expect(layered.loss).toBe(plain.loss);
      expect(Buffer.from(layered.grads.buffer).equals(Buffer.from(plain.grads.buffer))).toBe(true);
      expect(Buffer.from(seen.buffer).equals(Buffer.from(plain.grads.buffer))).toBe(true);
    } finally {
      clearInterval(timer);
    }
    const n = model.layers.length;
    expect(events).toEqual(
      Array.from({ length: n }, (_, k) => [`start ${n - 1 - k}`, `grads ${n - 1 - k}`]).flat(),
    );
    expect(ticks).toBeGreaterThan(ticksAtFirst); // the event loop turned during the backward
    expect(tf.memory().numTensors).toBe(before);
  });

  it('mlp from a tensor input: same bits', async () => {
    const model = buildModel(modelPreset('mlp'));
    const params = model.initParams(5);
    const x = randomArray(3 * model.inputSize, 2);
    const labels = [4, 2, 9];
    const plain = await model.lossAndGrads(params, x, labels);
    const xt = tf.tensor2d(x, [3, model.inputSize]);
    const order: number[] = [];
    const layered = await model.lossAndGrads(params, xt, labels, undefined, {
      layerGrads: (i) => order.push(i),
    });
    xt.dispose();
    expect(order).toEqual([...model.layers.keys()].reverse());
    expect(Buffer.from(layered.grads.buffer).equals(Buffer.from(plain.grads.buffer))).toBe(true);
  });
});
