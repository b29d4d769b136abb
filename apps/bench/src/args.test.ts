import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { parseArgs, settingsFor } from './args.ts';

describe('parseArgs', () => {
  it('defaults to every part, full size', () => {
    expect(parseArgs([])).toEqual({
      quick: false,
      parts: ['raw', 'allreduce', 'train'],
      outDir: null,
      help: false,
    });
  });

  it('reads --quick, --only (in run order) and --out', () => {
    expect(parseArgs(['--quick', '--only', 'train,raw', '--out=/tmp/x'])).toEqual({
      quick: true,
      parts: ['raw', 'train'],
      outDir: '/tmp/x',
      help: false,
    });
  });

  it('lists every problem', () => {
    try {
      parseArgs(['--only', 'raw,gpu', '--frobnicate']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        '--only: unknown part "gpu" (expected raw, allreduce, train)',
        'unknown argument "--frobnicate"',
      ]);
    }
  });
});

describe('settingsFor', () => {
  it('keeps S a whole number of float32 and the quick run smaller', () => {
    const full = settingsFor({ quick: false, parts: ['allreduce'] });
    const quick = settingsFor({ quick: true, parts: ['allreduce'] });
    expect(full.allReduceBytes % 4).toBe(0);
    expect(full.ns).toEqual([2, 3, 4]);
    expect(quick.allReduceBytes).toBeLessThan(full.allReduceBytes);
    expect(quick.rawBytes).toBeLessThan(full.rawBytes);
    expect(full.trainSteps).toBe(60);
  });
});
