// The coordinator's side of checkpoints (@peertrain/protocol checkpoint.ts has the format): every
// config.checkpointEvery steps the holder (rank 0 of the ring; the server rank of ps) sends the flat
// state [P + slots] ahead of that step's stepDone, and the coordinator emits it as a `checkpoint`
// event (the dashboard stores it in IndexedDB, the CLI writes it to --checkpoint-dir). A resumed run
// sends the checkpoint's state to every rank before the first step.
import {
  CheckpointError,
  PHASE_TIMEOUTS,
  PhaseTimeoutError,
  checkpointKey,
  encodeCheckpoint,
  joinState,
  resumeKey,
} from '@peertrain/protocol';
import type { Checkpoint, CoordinatorEvent, RunConfig } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';

/**
 * The rank whose state is the run's: rank 0 of the ring (every rank holds the same), and for ps the
 * single server, which dataParallel.ts puts on rank 0 (serverRank 0).
 */
export const CHECKPOINT_HOLDER_RANK = 0;

/** Sends the checkpoint's state (float32 [P + slots]) to every rank of a resumed run. */
export async function sendResumeState(
  mesh: Mesh,
  ranks: readonly string[],
  runId: number,
  cp: Checkpoint,
  signal: AbortSignal,
): Promise<void> {
  const flat = joinState(cp.params, cp.optimizer);
  const data = new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength);
  await Promise.all(
    ranks.map((id) =>
      mesh.sendTensor(id, { ...resumeKey(runId), dtype: 'float32', shape: [flat.length], data }, { signal }),
    ),
  );
}

/**
 * The holder's state after `steps` steps as a checkpoint event. The tensor travels ahead of the
 * step's stepDone on the same ordered link, so by the time the barrier passed it is here (the mesh
 * keeps a tensor that arrives before it is asked for); a short wait covers a slow reassembly.
 */
export async function collectCheckpoint(
  mesh: Mesh,
  holder: string,
  run: { runId: number; config: RunConfig; room: string },
  steps: number,
  opts: { signal: AbortSignal; timeoutMs: number; toBase64: (b: Uint8Array) => string },
): Promise<Extract<CoordinatorEvent, { type: 'checkpoint' }>> {
  const limit = AbortSignal.timeout(opts.timeoutMs);
  const msg = await mesh
    .recvTensor(holder, checkpointKey(run.runId, steps), { signal: AbortSignal.any([opts.signal, limit]) })
    .catch((e: unknown) => {
      opts.signal.throwIfAborted();
      // The named phase when it timed out (PHASE_TIMEOUTS.checkpoint), else what the mesh said.
      const why = limit.aborted
        ? new PhaseTimeoutError(PHASE_TIMEOUTS.checkpoint.phase, opts.timeoutMs).message
        : (e as Error).message;
      throw new CheckpointError(`no state from ${holder} after step ${steps}: ${why}`);
    });
  const bytes = msg.data.slice(); // own, aligned copy
  const { manifest, blob } = encodeCheckpoint({
    config: run.config,
    step: steps,
    state: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4),
    room: run.room,
    runId: run.runId,
    createdAt: new Date().toISOString(),
  });
  return { type: 'checkpoint', manifest, blobBase64: opts.toBase64(blob) };
}

/** Bytes of a typed array as base64 (btoa exists in browsers and Node). */
export function toBase64(a: ArrayBufferView): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
