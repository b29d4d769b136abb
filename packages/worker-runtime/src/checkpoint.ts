// Checkpoints on the worker's side (@peertrain/protocol checkpoint.ts has the format): the holder
// (the method's checkpointState: rank 0 of the ring, the parameter server) sends the flat state
// [P + slots] to the coordinator after every checkpointEvery-th step, ahead of that step's stepDone
// on the same ordered link; a resumed run receives the state before its setup and starts at
// assign.resume.step.
import { deadline } from '@peertrain/base';
import { CheckpointError, checkpointDue, checkpointKey, resumeKey, splitState } from '@peertrain/protocol';
import type { RunState, WorkerCore } from './core.ts';
import type { Assign, MethodRun, RestoredState } from './methods/types.ts';

/** How long a resumed run waits for its state from the coordinator. */
const RESUME_TIMEOUT_MS = 60_000;

/** Sends the state after `run.completed` steps when a checkpoint is due and this worker holds it. */
export async function sendCheckpointIfDue(
  core: WorkerCore,
  run: RunState,
  method: MethodRun,
  signal: AbortSignal,
): Promise<void> {
  const { config, runId } = run.assign;
  if (!checkpointDue(config.checkpointEvery, run.completed)) return;
  const state = method.checkpointState?.() ?? null;
  if (!state) return;
  await core.mesh.sendTensor(
    core.coordinatorId,
    {
      ...checkpointKey(runId, run.completed),
      dtype: 'float32',
      shape: [state.length],
      data: new Uint8Array(state.buffer, state.byteOffset, state.byteLength),
    },
    { signal },
  );
}

/** A resumed run's state from the coordinator (null when the run starts from step 0). */
export async function receiveResume(
  core: WorkerCore,
  assign: Assign,
  paramCount: number,
  signal: AbortSignal,
): Promise<RestoredState | null> {
  if (!assign.resume) return null;
  const msg = await core.mesh.recvTensor(core.coordinatorId, resumeKey(assign.runId), {
    signal: deadline(signal, RESUME_TIMEOUT_MS),
  });
  const bytes = msg.data.slice(); // own, aligned copy
  const flat = new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  const state = splitState(assign.config.optimizer, flat);
  if (state.params.length !== paramCount)
    throw new CheckpointError(
      `the resumed state holds ${state.params.length} parameters, this model has ${paramCount}`,
    );
  return state;
}
