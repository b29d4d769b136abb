import { describe, expect, it } from 'vitest';
import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import {
  compressionConfig,
  overlapField,
  scalingCases,
  scalingConfig,
  scalingMethods,
  scalingSettings,
} from './scaling-cases.ts';

describe('overlapField', () => {
  it('finds a boolean overlap* switch other than overlapOuter, by parsing', () => {
    expect(overlapField(() => ({ overlapOuter: false, steps: 3 }))).toBeNull();
    expect(overlapField(() => ({ overlapOuter: false, overlapBackward: false }))).toBe('overlapBackward');
    // Not a switch: a number named overlap* is not the flag.
    expect(overlapField(() => ({ overlapBuckets: 4 }))).toBeNull();
  });

  it("reads this branch's run configuration without throwing", () => {
    const f = overlapField();
    if (f !== null) expect(typeof (parseRunConfig({}) as Record<string, unknown>)[f]).toBe('boolean');
  });
});

describe('scalingMethods', () => {
  it('lists every method, the overlap row only with its field', () => {
    const ids = scalingMethods(null).map((m) => m.id);
    expect(ids).toEqual([
      'allreduce',
      'diloco-5',
      'diloco-20',
      'diloco-50',
      'diloco-20-overlap',
      'diloco-20-fill',
      'local-10-int8',
      'int8',
      'topk',
      'powersgd',
      'ps-async',
    ]);
    const withOverlap = scalingMethods('overlapBackward');
    expect(withOverlap[1]).toMatchObject({ id: 'overlap', extra: { overlapBackward: true } });
  });
});

describe('scalingCases', () => {
  it('splits the same global batch over the tabs, one-tab row first per method', () => {
    const s = { ...scalingSettings(false), tabs: [4, 1, 3, 2] };
    const cases = scalingCases(s, scalingMethods(null));
    const mlpSync = cases.filter((c) => c.model.model === 'mlp' && c.method.id === 'allreduce');
    expect(mlpSync.map((c) => [c.tabs, c.batch])).toEqual([
      [1, 96],
      [2, 48],
      [3, 32],
      [4, 24],
    ]);
    // Without an overlap field the overlap method asked for by the full plan is left out.
    expect(cases.length).toBe(2 * 11 * 4);
  });

  it('refuses tab counts that do not split the global batch', () => {
    expect(() => scalingCases({ ...scalingSettings(true), tabs: [1, 5] }, scalingMethods(null))).toThrow(
      ConfigError,
    );
  });
});

describe('scalingConfig', () => {
  it('gives a valid run configuration for every method (and the overlap switch where asked)', () => {
    const s = scalingSettings(false);
    for (const c of scalingCases(s, scalingMethods(null))) {
      const cfg = parseRunConfig(scalingConfig(c, s.seed));
      expect(cfg).toMatchObject({ workers: c.tabs, batch: c.batch, backend: 'wasm', seed: 42 });
      expect(cfg.targetAccuracy).toBe(c.model.target);
      expect(cfg.evalEvery).toBe(c.model.model === 'mlp' ? 10 : 25);
    }
    const [overlap] = scalingCases(
      { ...s, methods: ['overlap'], tabs: [2] },
      scalingMethods('overlapBackward'),
    );
    expect(overlap && scalingConfig(overlap, 1)).toMatchObject({ sync: 'allreduce', overlapBackward: true });
    const diloco = scalingCases({ ...s, methods: ['diloco-50'], tabs: [3] }, scalingMethods(null))[0];
    expect(diloco && scalingConfig(diloco, 1)).toMatchObject({ sync: 'diloco', innerSteps: 50, batch: 32 });
  });

  it('compression runs: every step, no target, the given spec', () => {
    const s = scalingSettings(false);
    const c = s.compression!;
    const cfg = parseRunConfig(compressionConfig(c, 'topk:0.01', s.globalBatch, s.seed));
    expect(cfg).toMatchObject({ compress: 'topk:0.01', steps: 300, workers: 3, batch: 32, evalEvery: 0 });
    expect(cfg.targetAccuracy).toBeUndefined();
  });
});
