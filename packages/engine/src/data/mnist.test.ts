import { describe, expect, it } from 'vitest';
import { DataError } from '../errors.ts';
import { MNIST_MAGIC, loadMnist, parseMnist } from './mnist.ts';

function tinyMnist(count: number, trainCount: number): Uint8Array {
  const out = new Uint8Array(16 + count * 784 + count);
  const view = new DataView(out.buffer);
  view.setUint32(0, MNIST_MAGIC, true);
  view.setUint32(4, count, true);
  view.setUint32(8, trainCount, true);
  view.setUint32(12, 784, true);
  for (let i = 0; i < count; i++) {
    out[16 + i * 784] = 255; // first pixel of every image
    out[16 + i * 784 + 1] = 51;
    out[16 + count * 784 + i] = i % 10;
  }
  return out;
}

describe('mnist', () => {
  it('parses the layout: pixels scaled to 0..1, the split after trainCount', () => {
    const d = parseMnist(tinyMnist(5, 3));
    expect([d.trainCount, d.testCount]).toEqual([3, 2]);
    expect(d.trainX.length).toBe(3 * 784);
    expect(d.testX.length).toBe(2 * 784);
    expect(d.trainX[0]).toBe(1);
    expect(d.trainX[1]).toBeCloseTo(0.2, 6);
    expect(Array.from(d.trainY)).toEqual([0, 1, 2]);
    expect(Array.from(d.testY)).toEqual([3, 4]);
  });

  it('refuses malformed files with DataError', () => {
    const good = tinyMnist(2, 1);
    expect(() => parseMnist(good.subarray(0, 10))).toThrow(DataError);
    expect(() => parseMnist(good.subarray(0, good.length - 1))).toThrow(DataError);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => parseMnist(badMagic)).toThrow(/magic/);
    const badLabel = good.slice();
    badLabel[badLabel.length - 1] = 10;
    expect(() => parseMnist(badLabel)).toThrow(/label/);
  });

  it('loads the real file in Node: 8000 train / 2000 test digits, every class present', async () => {
    const d = await loadMnist();
    expect([d.trainCount, d.testCount]).toEqual([8000, 2000]);
    const counts = new Array<number>(10).fill(0);
    for (const y of d.testY) counts[y]!++;
    expect(Math.min(...counts)).toBeGreaterThan(100);
    let max = 0;
    for (const v of d.trainX) max = Math.max(max, v);
    expect(max).toBe(1);
  });

  it('honours an aborted signal', async () => {
    await expect(loadMnist(undefined, { signal: AbortSignal.abort() })).rejects.toThrow();
  });
});
