import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import {
  compareCompress,
  compressConfig,
  compressPairSettings,
  renderCompress,
} from './pipeline-compress.ts';
import type { CompressRow } from './pipeline-compress.ts';

const row = (codec: CompressRow['codec'], bytes: number | null, acc: number): CompressRow => ({
  codec,
  ok: true,
  bytesBetweenStagesPerStep: bytes,
  testAccuracy: acc,
  finalLoss: 0.3,
  stepMsMedian: 500,
  bubbleMeasured: 0.7,
  wallMs: 60_000,
});

describe('the CNN activation pair', () => {
  it('runs the same seeded 4-stage 1F1B CNN with each codec, a valid config', () => {
    const s = compressPairSettings(false);
    expect(s).toMatchObject({ stages: 4, steps: 120, codecs: ['none', 'fp16'] });
    expect(compressPairSettings(true).steps).toBeLessThan(s.steps);
    for (const codec of s.codecs) {
      const c = parseRunConfig(compressConfig(s, codec));
      expect(c).toMatchObject({
        strategy: 'pipeline',
        model: 'cnn',
        dataset: 'mnist',
        workers: 4,
        schedule: '1f1b',
        microBatches: 8,
        activationCompress: codec,
        seed: 42,
        partition: '0-1,2-3,4-5,6-7',
      });
    }
  });

  it('compares with the exact run: bytes ratio, accuracy points, both targets', () => {
    expect(compareCompress([row('none', 1000, 0.95), row('fp16', 500, 0.948)])).toEqual([
      { codec: 'fp16', bytesRatio: 0.5, accuracyDiffPoints: expect.closeTo(-0.2, 9) as number, met: true },
    ]);
    const [tooBig] = compareCompress([row('none', 1000, 0.95), row('fp16', 520, 0.95)]);
    expect(tooBig?.met).toBe(false);
    const [tooFar] = compareCompress([row('none', 1000, 0.95), row('fp16', 500, 0.945)]);
    expect(tooFar?.met).toBe(false);
    const [unknown] = compareCompress([row('none', null, 0.95), row('fp16', 500, 0.95)]);
    expect(unknown).toMatchObject({ bytesRatio: null, met: false });
    const [failed] = compareCompress([{ codec: 'none', ok: false, error: 'x' }, row('fp16', 500, 0.95)]);
    expect(failed).toEqual({ codec: 'fp16', bytesRatio: null, accuracyDiffPoints: null, met: null });
  });

  it('renders the verdict and a row per codec', () => {
    const rows = [row('none', 1_000_000, 0.95), row('fp16', 500_000, 0.951)];
    const md = renderCompress({
      settings: compressPairSettings(false),
      rows,
      comparisons: compareCompress(rows),
    }).join('\n');
    expect(md).toContain('### Compressed activations (MNIST CNN, P=4 1f1b M=8, 120 steps, seed 42');
    expect(md).toContain(
      '- fp16: bytes 0.50x of fp32 (target at most 0.51x), accuracy 0.10 pt (target within 0.3): met.',
    );
    expect(md).toMatch(/\| fp16 +\| +500000 \| +0\.50x \| +0\.9510 \| +\+0\.10 pt \|/);
  });
});
