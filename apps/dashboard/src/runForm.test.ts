import { describe, expect, it } from 'vitest';
import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import { initialRunForm, runFormToConfig } from './runForm.ts';

describe('run form', () => {
  it('starts from the protocol defaults and round-trips them', () => {
    expect(runFormToConfig(initialRunForm())).toEqual(parseRunConfig({}));
  });

  it('builds the optimizer from the choice', () => {
    const form = {
      ...initialRunForm(),
      optimizer: 'adam' as const,
      lr: '0.001',
      workers: ' 4 ',
      reference: true,
    };
    const cfg = runFormToConfig(form);
    expect(cfg.optimizer).toEqual({ kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    expect(cfg).toMatchObject({ lr: 0.001, workers: 4, reference: true });
    expect(runFormToConfig({ ...initialRunForm(), momentum: '0.5' }).optimizer).toEqual({
      kind: 'sgd',
      momentum: 0.5,
    });
  });

  it('names every bad field', () => {
    try {
      runFormToConfig({ ...initialRunForm(), steps: '', batch: 'abc' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        'steps: "" is not a number',
        'batch: "abc" is not a number',
      ]);
    }
    expect(() => runFormToConfig({ ...initialRunForm(), workers: '0' })).toThrow(/workers/);
    expect(() => runFormToConfig({ ...initialRunForm(), batch: '2.5' })).toThrow(/batch/);
  });
});
