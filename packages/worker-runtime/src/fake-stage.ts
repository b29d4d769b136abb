// A pipeline stage without an engine, for the executor's tests (held.test.ts, lanes.test.ts).
import { sleep } from '@peertrain/base';
import type { StageSession } from './compute.ts';

export interface FakeStageOptions {
  /** Floats in every activation and gradient the stage sends. */
  width: number;
  /** Wall time of each forward and backward (a timer: the stage computes on its own core). Default 0. */
  computeMs?: number;
}

/** Stage `index` of `stages`: every forward and backward returns `width` floats (none at the ends). */
export function fakeStage(index: number, stages: number, opts: FakeStageOptions): StageSession {
  const { width, computeMs = 0 } = opts;
  const compute = async (input: Float32Array | null, end: boolean): Promise<Float32Array | null> => {
    if (computeMs > 0) await sleep(computeMs);
    if (input && input.length !== width) throw new Error(`got ${input.length} values, expected ${width}`);
    return end ? null : new Float32Array(width).fill(index + 1);
  };
  return {
    first: index,
    end: index + 1,
    isFirst: index === 0,
    isLast: index === stages - 1,
    paramOffset: 0,
    paramCount: 0,
    beginStep: () => Promise.resolve(),
    forward: (_mb, input) => compute(input, index === stages - 1),
    backward: (_mb, dy) => compute(dy, index === 0),
    endStep: () => Promise.resolve({ loss: null, peakActivationBytes: 0, peakActivationBytesNoRecompute: 0 }),
    reset: () => undefined,
  };
}
