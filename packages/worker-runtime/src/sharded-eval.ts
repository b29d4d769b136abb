// Sharded evaluation, for methods whose ranks all hold the same parameters at a due evaluation
// (MethodRun.sharedEval: synchronous all-reduce, DiLoCo's G at a round's end). Rank r evaluates its
// part of the test split, rows [floor(r T / N), floor((r + 1) T / N)), and sends its sums
// [lossSum, hits, count] (float64, as 24 bytes) to rank 0, which adds the parts in rank order and
// reports the evaluation as before (same evalResult; the target-accuracy stop stays rank 0's).
// Each tab evaluates 1/N of the split: before, rank 0 evaluated all of it (30-40 ms on 3 MLP tabs
// under load, every 10 steps) while the others waited for it at the next exchange.
import { PHASE_TIMEOUTS, ProtocolError } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type { TrainSession } from './compute.ts';
import { hopTimed } from './phase-timeouts.ts';
import type { Assign } from './methods/index.ts';

/** Tag of a rank's evaluation part (key: run, evaluated step): apart from 0x7ffa-0x7ffe's. */
export const EVAL_PART_TAG = 0x7ff9_0000;

/** [lossSum, hits, count] */
const PART_VALUES = 3;

/** What TrainSession.evaluate gives: mean loss, accuracy, test samples. */
export type EvalResult = Awaited<ReturnType<TrainSession['evaluate']>>;

/** Test rows [start, end) of part `index` of `of` over `count` rows. */
export function partRows(count: number, part: { index: number; of: number }): [number, number] {
  return [Math.floor((part.index * count) / part.of), Math.floor(((part.index + 1) * count) / part.of)];
}

/**
 * Evaluates this rank's part of the test split at `step`: rank 0 gets the whole split's result,
 * every other rank sends its part to rank 0 and gets null.
 */
export async function shardedEvaluate(
  mesh: Mesh,
  session: TrainSession,
  assign: Assign,
  params: Float32Array,
  step: number,
  signal: AbortSignal,
): Promise<EvalResult | null> {
  const { peers, rank, runId } = assign;
  const r = await session.evaluate(params, { signal, part: { index: rank, of: peers.length } });
  // An empty part (fewer test rows than ranks) has no loss to weigh.
  const own = Float64Array.of(r.count > 0 ? r.loss * r.count : 0, Math.round(r.accuracy * r.count), r.count);
  const key = { runId, step, microBatch: null, tag: EVAL_PART_TAG };
  // A ring links each rank to its neighbours only: with 4 or more ranks, some have no link to rank
  // 0 yet. Each side opens what it uses (both dialling is fine: the mesh keeps one link).
  const linked = rank === 0 ? peers.slice(1) : [peers[0]!];
  await Promise.all(linked.filter((p) => !mesh.isConnected(p)).map((p) => mesh.connect(p, { signal })));
  if (rank !== 0) {
    const data = new Uint8Array(own.buffer);
    await mesh.sendTensor(peers[0]!, { ...key, dtype: 'uint8', shape: [data.length], data }, { signal });
    return null;
  }
  // A part that never comes (its rank lost mid-evaluation) fails with the hop's named timeout.
  const timed = hopTimed(mesh, PHASE_TIMEOUTS.allreduceHop);
  const parts = await Promise.all(
    peers.slice(1).map(async (peer) => partOf((await timed.recvTensor(peer, key, { signal })).data, peer)),
  );
  let [lossSum, hits, count] = [0, 0, 0];
  for (const p of [own, ...parts]) {
    lossSum += p[0]!;
    hits += p[1]!;
    count += p[2]!;
  }
  return { loss: lossSum / count, accuracy: hits / count, count };
}

/** A part as sent: 3 float64 (copied: the bytes may sit unaligned in their frame). */
function partOf(data: Uint8Array, peer: string): Float64Array {
  if (data.byteLength !== PART_VALUES * 8)
    throw new ProtocolError('bad-message', `${peer} sent an evaluation part of ${data.byteLength} bytes`);
  const p = new Float64Array(data.slice().buffer);
  const [lossSum, hits, count] = [p[0]!, p[1]!, p[2]!];
  if (!(Number.isFinite(lossSum) && Number.isInteger(count) && count >= 0 && Number.isInteger(hits)))
    throw new ProtocolError('bad-message', `${peer} sent an evaluation part that is not one`);
  if (!(hits >= 0 && hits <= count))
    throw new ProtocolError('bad-message', `${peer} sent ${hits} hits of ${count} test samples`);
  return p;
}
