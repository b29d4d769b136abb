import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkResumable,
  checkpointDue,
  decodeCheckpoint,
  encodeCheckpoint,
  joinState,
  paramCountOfState,
  splitState,
} from './checkpoint.ts';
import { parseRunConfig } from './config.ts';
import { CheckpointError } from './errors.ts';
import { sha256Hex } from './sha256.ts';

const config = parseRunConfig({ workers: 2, steps: 12, optimizer: { kind: 'sgd', momentum: 0.9 } });
// P = 5: params, velocity [5], steps [1]
const params = Float32Array.from([0.5, -1.25, 3e-8, 7, -0.1]);
const velocity = Float32Array.from([1, 2, 3, 4, 5]);
const state = joinState(params, [velocity, Float32Array.of(6)]);

describe('checkpoint format', () => {
  it('encodes and decodes the parameters, the optimizer state and the step bit for bit', () => {
    const { manifest, blob } = encodeCheckpoint({ config, step: 6, state, room: 'r1', runId: 2 });
    expect(manifest).toMatchObject({ step: 6, paramCount: 5, optimizerSlots: [5, 1], room: 'r1', runId: 2 });
    expect(manifest.blob.bytes).toBe(11 * 4);
    const cp = decodeCheckpoint(JSON.parse(JSON.stringify(manifest)), blob);
    expect(cp.step).toBe(6);
    expect(cp.config).toEqual(config);
    expect(cp.params).toEqual(params);
    expect(cp.optimizer).toEqual([velocity, Float32Array.of(6)]);
  });

  it('writes the blob little-endian', () => {
    const { blob } = encodeCheckpoint({ config, step: 1, state });
    expect(new DataView(blob.buffer).getFloat32(4, true)).toBe(-1.25);
  });

  it('refuses a blob whose digest does not match, by name', () => {
    const { manifest, blob } = encodeCheckpoint({ config, step: 6, state });
    blob[7]! ^= 1;
    expect(() => decodeCheckpoint(manifest, blob)).toThrow(CheckpointError);
    expect(() => decodeCheckpoint(manifest, blob)).toThrow(/digest mismatch/);
  });

  it('refuses a truncated blob and a malformed manifest', () => {
    const { manifest, blob } = encodeCheckpoint({ config, step: 6, state });
    expect(() => decodeCheckpoint(manifest, blob.subarray(0, 40))).toThrow(/40 bytes, the manifest says 44/);
    expect(() => decodeCheckpoint({ ...manifest, format: 'x' }, blob)).toThrow(CheckpointError);
    expect(() => decodeCheckpoint({ ...manifest, config: { workers: -1 } }, blob)).toThrow(
      /run configuration is invalid/,
    );
  });

  it('splits the flat state by the optimizer: sgd with and without momentum, adam', () => {
    expect(paramCountOfState({ kind: 'sgd', momentum: 0.9 }, 11)).toBe(5);
    expect(paramCountOfState({ kind: 'sgd', momentum: 0 }, 6)).toBe(5);
    const adam = { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;
    expect(paramCountOfState(adam, 16)).toBe(5);
    expect(() => paramCountOfState(adam, 17)).toThrow(CheckpointError);
    expect(splitState(adam, new Float32Array(16)).optimizer.map((b) => b.length)).toEqual([5, 5, 1]);
  });
});

describe('checkResumable', () => {
  it('lets the step count, evaluation and backend differ', () => {
    const cp = { config, step: 6 };
    expect(() =>
      checkResumable(cp, parseRunConfig({ ...config, steps: 300, evalEvery: 0, backend: 'cpu' })),
    ).not.toThrow();
  });

  it('refuses another model, world size or seed, naming each', () => {
    const other = parseRunConfig({ ...config, model: 'cnn', workers: 3, seed: 7 });
    expect(() => checkResumable({ config, step: 6 }, other)).toThrow(CheckpointError);
    expect(() => checkResumable({ config, step: 6 }, other)).toThrow(
      /model: checkpoint "mlp", run "cnn".*seed: checkpoint 42, run 7.*workers: checkpoint 2, run 3/,
    );
  });

  it('refuses a run with no steps left', () => {
    expect(() => checkResumable({ config, step: 12 }, config)).toThrow(/none left/);
  });
});

describe('sha256Hex', () => {
  it('equals node:crypto on lengths around the block and padding edges', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255);
      expect(sha256Hex(b)).toBe(createHash('sha256').update(b).digest('hex'));
    }
  });
});

it('checkpointDue: every K steps, never at 0 or with K = 0', () => {
  expect([0, 1, 2, 3, 4, 6].map((d) => checkpointDue(3, d))).toEqual([
    false,
    false,
    false,
    true,
    false,
    true,
  ]);
  expect(checkpointDue(0, 6)).toBe(false);
});
