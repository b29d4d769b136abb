import { deadline } from '@peertrain/base';
import { PeerLostError, checkpointDue, stageRestoreKey, stageSnapshotKey } from '@peertrain/protocol';
import type { RunConfig } from '@peertrain/protocol';
import { SpanRecorder } from '@peertrain/telemetry';
import type { ElasticEpochs, StepDoneLog } from './epochs.ts';
import type { Hub } from './hub.ts';
import type { SpanIntake } from './intake.ts';
import type { Membership } from './membership.ts';

/*
 * Elastic pipelines (config.elastic, strategy pipeline): the first workers - spares ranks are the
 * stages, the rest idle spares (assigned, data loaded, no links). Every stageCheckpointEvery steps
 * each stage sends its state (its layers' parameters and optimizer state) ahead of its stepDone;
 * once the barrier passes that step the coordinator takes every stage's, and the newest step C with
 * all of them is what a recovery rolls back to (C = 0: the seeded initial state, nothing sent).
 *
 * A lost stage: the first spare takes its place (its stage, its layers), and every stage of the new
 * epoch restores C's state (the coordinator sends each its own) and redoes from step C. Each stage's
 * arithmetic and batches depend on the step only, so the run ends equal to the undisturbed one. The
 * recovery is a 'recovery' span on the coordinator's track, from the loss until the barrier passes
 * the step it was waiting for again. No spare left: PeerLostError, the steps done kept.
 */

/** What a recovery reads of the run in progress (the driver's ActiveRun). */
export interface SpareRun {
  runId: number;
  config: RunConfig;
  /** Peer ids by rank: the stages, then the spares (a spare keeps its rank when it takes a stage). */
  ranks: readonly string[];
  epochs: ElasticEpochs | null;
  stepDone: StepDoneLog;
  /** The step the barrier waits for (every earlier step is recorded). */
  waiting: number;
  abort: AbortController;
}

export interface SparesInit {
  hub: Hub;
  membership: Membership;
  spans: SpanIntake;
}

/** A recovery in flight, for its span: from `startMs` until the barrier passes step `until`. */
interface Open {
  startMs: number;
  until: number;
  fromStep: number;
  lost: string;
  bytes: number;
}

export class StageSpares {
  /** Spare peer ids not used yet, by rank. */
  private readonly pool: string[];
  /** The newest step after which every stage's state arrived, and those states by stage. */
  private latest: { step: number; states: Float32Array[] } | null = null;
  private readonly open: Open[] = [];
  private readonly recorder: SpanRecorder;
  /** Steps aborted or rolled back and run again, over every recovery (the report's redoneSteps). */
  redone = 0;

  constructor(
    private readonly init: SparesInit,
    private readonly r: SpareRun,
    /** The barrier window: how far ahead of `waiting` the stages are granted. */
    private readonly window: number,
    /** Every stage's snapshot after step `step` is in: a recovery now redoes from there. */
    private readonly onSnapshot: (step: number) => void = () => undefined,
  ) {
    this.pool = r.ranks.slice(r.ranks.length - r.config.spares);
    this.recorder = new SpanRecorder({ peerId: init.hub.mesh.localId, now: () => init.hub.now() });
    init.spans.name(init.hub.mesh.localId, 'coordinator');
  }

  /** The step a recovery now redoes from. */
  get fromStep(): number {
    return this.latest?.step ?? 0;
  }

  /**
   * The barrier passed `step`: takes every stage's snapshot after step + 1 when one is due (they came
   * ahead of the stepDone messages, on the same links), and ends the recoveries that caught up.
   */
  afterStep(step: number): void {
    const done = step + 1;
    const members = this.r.epochs?.members() ?? [];
    if (checkpointDue(this.r.config.stageCheckpointEvery, done)) void this.collect(done, members);
    for (const o of this.open.filter((x) => x.until <= step)) this.close(o);
  }

  /**
   * The run's final evaluation is in: a recovery still open began at the run's end (a stage lost in
   * the final gather), which no step's barrier follows; it ends here.
   */
  runEnded(): void {
    for (const o of [...this.open]) this.close(o);
  }

  /** Ends recovery `o`: its span, from the loss until now, on the coordinator's track. */
  private close(o: Open): void {
    this.open.splice(this.open.indexOf(o), 1);
    const { hub, spans } = this.init;
    const sp = this.recorder.record('recovery', o.startMs, hub.now() - o.startMs, {
      step: o.fromStep,
      lane: 'comm',
      peer: o.lost,
      bytes: o.bytes,
    });
    this.recorder.drain();
    const { kind, startMs, durMs, lane } = sp;
    spans.add(sp.peerId, 0, [{ kind, startMs, durMs, step: sp.step, lane, peer: o.lost, bytes: o.bytes }]);
  }

  private async collect(done: number, members: readonly string[]): Promise<void> {
    const { hub } = this.init;
    const signal = deadline(this.r.abort.signal, 60_000);
    try {
      const states = await Promise.all(
        members.map(async (id, position) => {
          const msg = await hub.mesh.recvTensor(id, stageSnapshotKey(this.r.runId, done, position), {
            signal,
          });
          const bytes = msg.data.slice(); // own, aligned copy
          return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
        }),
      );
      if (done > this.fromStep) {
        this.latest = { step: done, states };
        this.onSnapshot(done);
      }
    } catch (e) {
      // A stage lost before its snapshot came: the previous complete one stays the newest.
      if (!this.r.abort.signal.aborted)
        hub.log(`stage snapshots after step ${done} incomplete: ${String(e)}`);
    }
  }

  /**
   * `peerId` was lost during the run. A spare: it leaves the pool. A stage: the first spare takes
   * it and every stage rolls back to fromStep. Returns the error that fails the run (no spare left),
   * else null.
   */
  lose(peerId: string, detail: string): Error | null {
    const { hub, membership } = this.init;
    const r = this.r;
    const epochs = r.epochs!;
    if (!epochs.isMember(peerId)) {
      const at = this.pool.indexOf(peerId);
      if (at >= 0) this.pool.splice(at, 1);
      hub.log(`spare ${peerId} lost (${detail}): ${this.pool.length} spares left`);
      return null;
    }
    const spare = this.pool.shift();
    if (spare === undefined) return new PeerLostError(peerId, `${detail}; no spare left to take its stage`);
    const startMs = hub.now();
    const fromStep = this.fromStep;
    const position = epochs.members().indexOf(peerId);
    const msg = epochs.replace(peerId, spare, detail, fromStep, r.stepDone, membership.view().epoch + 1)!;
    membership.beginEpoch(msg.peers.map((id) => ({ peerId: id, rank: r.ranks.indexOf(id), role: 'stage' })));
    const lostRec = membership.peers.get(peerId);
    const spareRec = membership.peers.get(spare);
    if (spareRec) spareRec.stage = lostRec?.stage ?? null;
    this.init.spans.name(spare, `rank ${r.ranks.indexOf(spare)}: stage ${position} (spare)`);
    // Every step from fromStep to the one in flight is run again.
    this.redone += r.waiting + 1 - fromStep;
    hub.log(
      `${peerId} lost (${detail}): spare ${spare} takes stage ${position}; epoch ${msg.epoch} redoes from step ${fromStep}`,
    );
    hub.send(peerId, { type: 'stop', runId: r.runId, reason: 'left the epoch' });
    for (const id of msg.peers) hub.send(id, msg);
    hub.send(spare, {
      type: 'step',
      runId: r.runId,
      upTo: Math.min(r.waiting + this.window - 1, r.config.steps - 1),
    });
    const bytes = this.sendStates(msg.peers, msg.epoch, fromStep);
    this.drainResent(spare, position, fromStep);
    this.open.push({ startMs, until: r.waiting, fromStep, lost: peerId, bytes });
    hub.changed();
    return null;
  }

  /** Each stage its own state after fromStep steps (none for step 0: the seeded init). Returns the bytes. */
  private sendStates(peers: readonly string[], epoch: number, fromStep: number): number {
    const { hub } = this.init;
    if (fromStep === 0 || !this.latest) return 0;
    let bytes = 0;
    peers.forEach((id, position) => {
      const state = this.latest!.states[position]!;
      const data = new Uint8Array(state.buffer, state.byteOffset, state.byteLength);
      bytes += data.byteLength;
      const key = stageRestoreKey(this.r.runId, epoch, fromStep);
      hub.mesh
        .sendTensor(
          id,
          { ...key, dtype: 'float32', shape: [state.length], data },
          { signal: this.r.abort.signal },
        )
        .catch((e: unknown) => hub.log(`restoring stage ${position} on ${id} failed: ${String(e)}`));
    });
    return bytes;
  }

  /**
   * The spare sends the snapshots of the redone steps the barrier had passed (the survivors do not
   * send a step's twice): taken and dropped, so they do not sit in the mailbox.
   */
  private drainResent(spare: string, position: number, fromStep: number): void {
    const every = this.r.config.stageCheckpointEvery;
    for (let done = fromStep + 1; done <= this.r.waiting; done++) {
      if (!checkpointDue(every, done)) continue;
      void this.init.hub.mesh
        .recvTensor(spare, stageSnapshotKey(this.r.runId, done, position), { signal: this.r.abort.signal })
        .catch(() => undefined);
    }
  }
}
