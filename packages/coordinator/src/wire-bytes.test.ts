import { describe, expect, it } from 'vitest';
import { modelPreset } from '@peertrain/protocol';
import type { LayerCost } from '@peertrain/protocol';
import { planStages } from '@peertrain/planner';
import { wireBytes } from './planning.ts';

// The planner's view of what crosses a cut: the codec's width, and zero skipping after a ReLU.

/** wideMlp's 9 layers, one micro-batch of 16 rows: dense 10 ms, relu 0.2 ms, the last dense 1 ms. */
const wide: LayerCost[] = modelPreset('wideMlp').layers.map((l, i) => ({
  name: `${i}.${l.kind}`,
  costMs: l.kind === 'relu' ? 0.2 : i === 8 ? 1 : 10,
  paramBytes: 4_000_000,
  activationBytes: 65_536,
  outputBytes: i === 8 ? 640 : 65_536,
}));

const config = { model: 'wideMlp' as const, activationCompress: 'none' as const, activationSkipZeros: true };

describe('wireBytes', () => {
  it('a ReLU output counts its mask and half its values; a dense output all of them', () => {
    const out = wireBytes(wide, config).map((l) => l.outputBytes);
    const relu = Math.round(16_384 * (1 / 8 + 2)); // 0.53x of 65,536
    expect(out).toEqual([65_536, relu, 65_536, relu, 65_536, relu, 65_536, relu, 640]);
    expect(wireBytes(wide, { ...config, activationSkipZeros: false }).map((l) => l.outputBytes)).toEqual(
      wide.map((l) => l.outputBytes),
    );
  });

  it('fp16 halves every output before skipping; int8 quarters them and skips nothing', () => {
    const fp16 = wireBytes(wide, { ...config, activationCompress: 'fp16' }).map((l) => l.outputBytes);
    expect(fp16.slice(0, 2)).toEqual([32_768, Math.round(16_384 * (1 / 8 + 1))]);
    const int8 = wireBytes(wide, { ...config, activationCompress: 'int8' }).map((l) => l.outputBytes);
    expect(int8.slice(0, 2)).toEqual([16_384, 16_384]);
  });

  it('so the planner cuts after the ReLUs, where the dense outputs cost as much compute', () => {
    const devices = [0, 1, 2, 3].map((i) => ({ id: `d${i}`, gflops: 1, memoryBytes: 1e12 }));
    const opts = { microBatches: 8, bytesPerMs: 20_000 };
    const ends = (layers: LayerCost[]) => planStages(layers, devices, opts).stages.map((s) => s.end);
    expect(ends(wireBytes(wide, config))).toEqual([2, 4, 6, 9]);
    // Counting float32 everywhere, the ties fall after the dense layers: the ReLUs' zeros then
    // never cross, and their gradients are not gated.
    expect(ends(wide)).toEqual([1, 3, 5, 9]);
  });
});
