// A pipeline stage without an engine, for the executor's tests (held.test.ts, lanes.test.ts).
import { sleep } from '@peertrain/base';
import type { StageSession } from './compute.ts';

export interface FakeStageOptions {
  /** Floats in every activation and gradient the stage sends. */
  width: number;
  /** Wall time of each forward and backward (a timer: the stage computes on its own core). Default 0. */
  computeMs?: number;
  /** Also offer the split backward (zb-h1): I and W each take half of computeMs. Default false. */
  split?: boolean;
}

/** Stage `index` of `stages`: every forward and backward returns `width` floats (none at the ends). */
export function fakeStage(index: number, stages: number, opts: FakeStageOptions): StageSession {
  const { width, computeMs = 0, split = false } = opts;
  const compute = async (
    input: Float32Array | null,
    end: boolean,
    ms = computeMs,
  ): Promise<Float32Array | null> => {
    if (ms > 0) await sleep(ms);
    if (input && input.length !== width) throw new Error(`got ${input.length} values, expected ${width}`);
    return end ? null : new Float32Array(width).fill(index + 1);
  };
  const halves = {
    backwardInput: (_mb: number, dy: Float32Array | null) => compute(dy, index === 0, computeMs / 2),
    backwardWeight: async () => {
      await compute(null, true, computeMs / 2);
    },
  };
  return {
    ...(split ? halves : {}),
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
