import type { ToWorker } from '@peertrain/protocol';
import type { SpanRecorder } from '@peertrain/telemetry';
import type { Mesh } from '@peertrain/transport';
import type { TrainSession } from '../compute.ts';

/** The coordinator's assignment of one run to this worker. */
export type Assign = Extract<ToWorker, { type: 'assign' }>;

/** Where the assignment puts this worker: all that decides a method's links. */
export type Placement = Pick<Assign, 'config' | 'peers' | 'rank' | 'serverRank'>;

/** Today's methods; a new one adds its name here and a line in the registry (methods/index.ts). */
export type MethodName = 'allreduce' | 'ps' | 'diloco' | 'pipeline' | 'hybrid' | 'ps-async';

/** The links a method needs before step 0: those this worker opens, and every one it waits for. */
export interface MethodLinks {
  /** Peers this worker dials (the other end waits for the link). */
  dial: string[];
  /** Peers that must be linked (dialled by either end) before setup; may repeat `dial`. */
  need: string[];
}

/** What the driver hands a method once the session is prepared and the links are open. */
export interface MethodContext {
  mesh: Mesh;
  assign: Assign;
  session: TrainSession;
  /** The run's signal: aborted when the run stops, is superseded, or a peer is lost. */
  signal: AbortSignal;
  /** Every span of a step goes here (worker clock); the driver drains it into the step's report. */
  spans: SpanRecorder;
  /** Micro-batches whose activations the worker holds now (pipeline stages), for the memory report. */
  onHeld: (count: number) => void;
  /** A resumed run: the state after assign.resume.step steps, to start from instead of initParams. */
  restore?: RestoredState;
  /** The coordinator's peer id (elastic pipelines send it their stage snapshots). */
  coordinatorId?: string;
}

/** Parameters [P] and Optimizer.state() buffers of a checkpoint. */
export interface RestoredState {
  params: Float32Array;
  optimizer: Float32Array[];
}

/** The activation memory a pipeline stage peaked at during one step. */
export interface ActivationPeak {
  peakActivationBytes: number;
  peakActivationBytesNoRecompute: number;
}

/** What one step leaves behind, for `stepDone`. */
export interface StepOutcome {
  /** Mean loss of the batch, or null where this worker does not see it (a pipeline's inner stages). */
  loss: number | null;
  /** Computation time of the step, ms (the rest of the step's wall time is reported as communication). */
  computeMs: number;
  /** Pipeline stages only. */
  activation?: ActivationPeak;
  /** Asynchronous parameter server: the largest staleness among the pushes acknowledged this step. */
  staleness?: number;
  /** DiLoCo with fillWaits: samples of the extra inner steps taken at the step's round end. */
  extraSamples?: number;
}

/** One method running on one worker for one run (made by WorkerMethod.setup). */
export interface MethodRun {
  /** Bytes of the parameters this worker holds (the whole model, or its stage), for the memory report. */
  readonly paramBytes: number;
  /**
   * The parameters this worker evaluates, hands to the coordinator after the last step and compares
   * with the reference; null where it holds no whole model (a pipeline stage other than rank 0).
   * Rank 0 evaluates the due steps; any holder answers an `evaluate` request.
   */
  readonly evalParams: Float32Array | null;
  /**
   * Every rank holds the same `evalParams` at a due evaluation (synchronous all-reduce, DiLoCo's
   * G): each rank evaluates its part of the test split and rank 0 adds the parts
   * (sharded-eval.ts). Absent: rank 0 evaluates the whole split.
   */
  readonly sharedEval?: boolean;
  /**
   * Where the parameters live on the device (TrainSession.deviceSteps): copies them into
   * `evalParams` before anyone reads it. Absent where `evalParams` is always current.
   */
  syncParams?(): Promise<void>;
  /** Runs step `step` (granted by the coordinator); records its spans on the context's recorder. */
  step(step: number): Promise<StepOutcome>;
  /**
   * Runs on every worker after a step at which an evaluation is due (`after` steps done), before
   * rank 0 evaluates `evalParams`: a pipeline gathers its stages' parameters on rank 0 here.
   */
  beforeEval(after: number): Promise<void>;
  /**
   * Elastic methods whose evaluation needs every member (a pipeline's gather): an epoch came whose
   * fromStep is the run's end, `end`, so no step will take it; takes it now. The driver then runs
   * beforeEval and queues the final evaluation again.
   */
  takeEpochAtEnd?(end: number): Promise<void>;
  /**
   * Whether `evalParams` after `after` steps may differ from what the last evaluation saw: local-step
   * methods change them only at a round's end, so an evaluation due mid-round waits for it (absent:
   * always). The run's last step is evaluated whatever this says.
   */
  evalReady?(after: number): boolean;
  /**
   * Whether step `step`'s report (stepDone) may wait to go with later ones (reports.ts): nobody
   * waits for it, as for a local step inside a round whose barrier window covers the round.
   * Absent: every report goes at once.
   */
  holdReport?(step: number): boolean;
  /** Releases what setup made (the driver also disposes the session); called on every path out. */
  dispose(): void;
  /**
   * Checkpoints (config.checkpointEvery): the flat state [P + optimizer slots] after the steps
   * done, on the one worker that holds it; null (or absent) elsewhere and for methods not covered.
   */
  checkpointState?(): Float32Array | null;
}

/**
 * A training method, as a worker runs it: the links it needs, then per run a MethodRun that the
 * driver (run-loop.ts) calls once per granted step and before each due evaluation. The driver owns
 * everything around it (the grant, `stepDone`, evaluation, the final parameters, the reference),
 * so a new method is a new file plus a line in the registry, not an edit of the loop:
 * - Local steps (DiLoCo): `step` runs an inner optimizer step on the local parameters; every H steps
 *   it also all-reduces the pseudo-gradient (start params - local params) with `allReduceMean` and
 *   applies the outer optimizer. To overlap the outer exchange with the next round, `step` starts it
 *   without awaiting and the next round's boundary awaits it; `dispose` aborts what is left (the
 *   context's signal covers it too). `beforeEval` waits for the outer exchange in flight.
 * - Asynchronous parameter server with bounded staleness: `step` pushes its gradient and takes the
 *   newest parameters no more than S versions old, awaiting only when it is further behind; the
 *   server's state lives in the MethodRun that `setup` makes on the server's rank.
 * - Federated rounds: `step` is a round (E local epochs, then the server's weighted mean); `links`
 *   is the server star, as for `ps`.
 * - Compression of exchanged tensors: a method (or a wrapper around one) encodes before it sends
 *   and keeps its error feedback in its MethodRun; the wire's tensors stay float32 or uint8.
 * Spans go through `ctx.spans` (a SpanRecorder), so a new phase is a new `record` call.
 */
export interface WorkerMethod {
  readonly name: MethodName;
  /** The links this worker needs (n > 1); the driver opens them beside `prepare`. */
  links(placement: Placement): MethodLinks;
  /** Sets the run up once the session is prepared: parameters held, optimizer, server state. */
  setup(ctx: MethodContext): MethodRun;
}
