// Elastic pipelines: every config.stageCheckpointEvery steps each stage sends the coordinator its
// state after that many steps (joinState's layout: the stage's parameters, then its optimizer's
// state arrays), one float32 tensor ahead of the step's stepDone on the same ordered link (the mesh
// frames it in chunks under the channel's message size). When a stage's peer is lost the coordinator
// sends every stage of the new epoch its state back, keyed by the epoch, ahead of nothing: the stage
// waits for it before the redone step.

/** Tag of a stage's snapshot (stage -> coordinator); no collective, pipeline or checkpoint key uses it. */
const SNAPSHOT_TAG = 0x7ffb_0000;
/** Tag of a stage's restored state (coordinator -> stage). */
const RESTORE_TAG = 0x7ffa_0000;

/** A mesh tensor key (transport's TensorKey; protocol imports nothing). */
interface Key {
  runId: number;
  step: number;
  microBatch: number | null;
  tag: number;
}

/** The state after `steps` steps of the stage at `position`, sent to the coordinator. */
export const stageSnapshotKey = (runId: number, steps: number, position: number): Key => ({
  runId,
  step: steps,
  microBatch: null,
  tag: SNAPSHOT_TAG + position,
});

/** The state a stage of epoch `epoch` restores (committed after fromStep steps), from the coordinator. */
export const stageRestoreKey = (runId: number, epoch: number, fromStep: number): Key => ({
  runId,
  step: fromStep,
  microBatch: epoch,
  tag: RESTORE_TAG,
});
