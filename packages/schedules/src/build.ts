// Building blocks of the schedules: the ops of one (chunk, micro-batch) unit with its comms.

import type { AnyOp } from './ops.ts';

/** A position in the pipeline: device `stage` of P, chunk `chunk` of V (virtual stage chunk * P + stage). */
export interface Place {
  readonly stage: number;
  readonly stages: number;
  readonly chunk: number;
  readonly virtualStages: number;
}

/**
 * Appends the ops of one (chunk, micro-batch) unit with its comms to `ops`. With `tagChunk` every op
 * names its chunk (interleaved lists), else none does (chunk 0 implied).
 */
export function unitOps(ops: AnyOp[], place: Place, tagChunk: boolean) {
  const { stage, stages, chunk, virtualStages } = place;
  const v = chunk * stages + stage;
  const first = v === 0;
  const last = v === virtualStages * stages - 1;
  const up = (stage + 1) % stages;
  const down = (stage + stages - 1) % stages;
  const c = tagChunk ? { chunk } : {};
  return {
    fwd(mb: number): void {
      if (!first) ops.push({ kind: 'recvAct', mb, from: down, ...c });
      ops.push({ kind: 'forward', mb, ...c });
      if (!last) ops.push({ kind: 'sendAct', mb, to: up, ...c });
    },
    /** `kind` = 'backward' (both gradients) or 'backwardInput' (split backward, part 1). */
    bwd(mb: number, kind: 'backward' | 'backwardInput' = 'backward'): void {
      if (!last) ops.push({ kind: 'recvGrad', mb, from: up, ...c });
      ops.push({ kind, mb, ...c });
      if (!first) ops.push({ kind: 'sendGrad', mb, to: down, ...c });
    },
    weight(mb: number): void {
      ops.push({ kind: 'backwardWeight', mb, ...c });
    },
  };
}
