import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { syntheticDataset } from './synthetic.ts';

describe('syntheticDataset', () => {
  it('is deterministic from the seed and shaped as asked', () => {
    const a = syntheticDataset(5, { train: 50, test: 20, inputShape: [4, 4, 1], classes: 3 });
    const b = syntheticDataset(5, { train: 50, test: 20, inputShape: [4, 4, 1], classes: 3 });
    expect(a.trainX).toEqual(b.trainX);
    expect(a.testY).toEqual(b.testY);
    expect(a.trainX.length).toBe(50 * 16);
    expect(a.testX.length).toBe(20 * 16);
    expect(new Set(a.trainY).size).toBe(3);
    expect(
      syntheticDataset(6, { train: 50, test: 20, inputShape: [4, 4, 1], classes: 3 }).trainX,
    ).not.toEqual(a.trainX);
  });

  it('is learnable: nearest class mean (estimated on train) classifies the test set well', () => {
    const d = syntheticDataset(1, { train: 500, test: 200 });
    const size = 784;
    const means = new Float64Array(10 * size);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < d.trainCount; i++) {
      counts[d.trainY[i]!]!++;
      for (let j = 0; j < size; j++) means[d.trainY[i]! * size + j]! += d.trainX[i * size + j]!;
    }
    for (let c = 0; c < 10; c++) for (let j = 0; j < size; j++) means[c * size + j]! /= counts[c]!;
    let correct = 0;
    for (let i = 0; i < d.testCount; i++) {
      let best = -1;
      let bestDist = Infinity;
      for (let c = 0; c < 10; c++) {
        let dist = 0;
        for (let j = 0; j < size; j++) dist += (d.testX[i * size + j]! - means[c * size + j]!) ** 2;
        if (dist < bestDist) [best, bestDist] = [c, dist];
      }
      if (best === d.testY[i]) correct++;
    }
    expect(correct / d.testCount).toBeGreaterThan(0.8);
  });

  it('refuses nonsense', () => {
    expect(() => syntheticDataset(1, { train: 0, test: 1 })).toThrow(ConfigError);
    expect(() => syntheticDataset(1, { train: 1, test: 1, classes: 1 })).toThrow(ConfigError);
  });
});
