import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import {
  compareCompress,
  compressConfig,
  compressPairSettings,
  renderCompress,
} from './pipeline-compress.ts';
import type { ActivationCodec, CompressRow } from './pipeline-compress.ts';

const row = (
  codec: ActivationCodec,
  bytes: number | null,
  acc: number,
  { skipZeros = false, loss = 0.3 } = {},
): CompressRow => ({
  variant: { codec, skipZeros },
  ok: true,
  bytesBetweenStagesPerStep: bytes,
  testAccuracy: acc,
  finalLoss: loss,
  stepMsMedian: 500,
  bubbleMeasured: 0.7,
  wallMs: 60_000,
});

describe('the CNN activation pair', () => {
  it('runs the same seeded 4-stage 1F1B CNN with each codec, zeros sent then skipped, a valid config', () => {
    const s = compressPairSettings(false);
    expect(s).toMatchObject({ stages: 4, steps: 120 });
    expect(s.variants.map((v) => `${v.codec}/${v.skipZeros}`)).toEqual([
      'none/false',
      'fp16/false',
      'none/true',
      'fp16/true',
    ]);
    expect(compressPairSettings(true).steps).toBeLessThan(s.steps);
    for (const v of s.variants) {
      const c = parseRunConfig(compressConfig(s, v));
      expect(c).toMatchObject({
        strategy: 'pipeline',
        model: 'cnn',
        dataset: 'mnist',
        workers: 4,
        schedule: '1f1b',
        microBatches: 8,
        activationCompress: v.codec,
        activationSkipZeros: v.skipZeros,
        seed: 42,
        partition: '0-1,2-3,4-5,6-7',
      });
    }
  });

  it('compares with the exact run: bytes ratio, accuracy points, both targets', () => {
    expect(compareCompress([row('none', 1000, 0.95), row('fp16', 500, 0.948)])).toEqual([
      {
        variant: { codec: 'fp16', skipZeros: false },
        bytesRatio: 0.5,
        accuracyDiffPoints: expect.closeTo(-0.2, 9) as number,
        met: true,
      },
    ]);
    const [tooBig] = compareCompress([row('none', 1000, 0.95), row('fp16', 520, 0.95)]);
    expect(tooBig?.met).toBe(false);
    const [tooFar] = compareCompress([row('none', 1000, 0.95), row('fp16', 500, 0.945)]);
    expect(tooFar?.met).toBe(false);
    const [unknown] = compareCompress([row('none', null, 0.95), row('fp16', 500, 0.95)]);
    expect(unknown).toMatchObject({ bytesRatio: null, met: false });
    const [failed] = compareCompress([
      { variant: { codec: 'none', skipZeros: false }, ok: false, error: 'x' },
      row('fp16', 500, 0.95),
    ]);
    expect(failed).toMatchObject({ bytesRatio: null, accuracyDiffPoints: null, met: null });
  });

  it('skipping zeros: lossless must end on the exact run, fp16 within 0.3 point, no bytes target', () => {
    const base = row('none', 1000, 0.95);
    const [same, drift, half] = compareCompress([
      base,
      row('none', 400, 0.95, { skipZeros: true }),
      row('none', 400, 0.95, { skipZeros: true, loss: 0.3001 }),
      row('fp16', 600, 0.948, { skipZeros: true }),
    ]);
    expect(same).toMatchObject({ bytesRatio: 0.4, met: true });
    expect(drift?.met).toBe(false);
    expect(half).toMatchObject({ bytesRatio: 0.6, met: true });
  });

  it('renders the verdict and a row per codec', () => {
    const rows = [
      row('none', 1_000_000, 0.95),
      row('fp16', 500_000, 0.951),
      row('none', 400_000, 0.95, { skipZeros: true }),
    ];
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
    expect(md).toContain(
      '- none, zeros skipped: bytes 0.40x of fp32, accuracy 0.00 pt (target: the same accuracy and loss): met.',
    );
    expect(md).toMatch(/\| none, zeros skipped +\| +400000 \| +0\.40x \|/);
  });
});
