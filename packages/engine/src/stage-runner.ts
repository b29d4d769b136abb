// One pipeline stage at work: the tensors a stage holds between the ops of a schedule. The worker
// runtime walks the schedule's op list and calls forward(mb) / backward(mb) here; the bytes that
// cross to the neighbouring stages go in and out as Float32Arrays.
//
// Per step: beginStep uploads the stage's parameters once and readies the backend for them,
// forward(mb) keeps what backward(mb) needs (or, with recomputation, only the micro-batch's
// input), backward(mb) adds the micro-batch's
// parameter gradients to the step's sum, endStep reads the sum out. Micro-batch losses are divided
// by the whole batch's size, so the sum over micro-batches is the batch's mean-loss gradient: the
// same numbers as one worker on the whole batch (up to fp32 summation order).
import { microBatchRange } from '@peertrain/protocol';
import type { LayerCost, StageRange } from '@peertrain/protocol';
import { ShapeError } from './errors.ts';
import { disposeSaved, readTensorsInto } from './model.ts';
import type { Model, SavedActivations, Stage } from './model.ts';
import { softmaxCrossEntropy } from './loss.ts';
import { inputGradPass, weightGradPass } from './split-backward.ts';
import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

/** Raised when ops arrive out of the order a schedule allows (a runtime bug or a corrupt peer). */
export class StageOrderError extends Error {
  override readonly name = 'StageOrderError';
}

export interface StageRunnerOptions {
  /** The whole pipeline batch (per replica), split into `microBatches` near-equal parts. */
  readonly batch: number;
  readonly microBatches: number;
  /** Keep only each micro-batch's input; run forward again inside backward. */
  readonly recompute: boolean;
}

/** What a stage needs of the step's batch: the inputs on the first stage, the labels on the last. */
export interface StepData {
  /** [batch * model.inputSize] */
  readonly x?: Float32Array;
  /** [batch] class indices */
  readonly y?: Uint8Array | Int32Array;
}

export interface StageStepResult {
  /** Mean loss over the batch (last stage only). */
  readonly loss: number | null;
  /** Most activation bytes held at once during the step. */
  readonly peakActivationBytes: number;
  /** What forward would have kept without recomputation (= peakActivationBytes when not recomputing). */
  readonly peakActivationBytesNoRecompute: number;
}

export interface StageRunner {
  readonly stage: Stage;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  /** Rows of micro-batch mb. */
  rows(mb: number): number;
  /** Uploads this step's parameters (the stage's flat slice) and takes the step's data. */
  beginStep(params: Float32Array, data: StepData): void;
  /** input: [rows(mb), ...inputShape] from the previous stage (null on the first). Returns the output to send (null on the last). */
  forward(mb: number, input: Float32Array | null): Promise<Float32Array | null>;
  /** dy: [rows(mb), ...outputShape] from the next stage (null on the last). Returns dx to send back (null on the first). */
  backward(mb: number, dy: Float32Array | null): Promise<Float32Array | null>;
  /**
   * Split backward, part 1 (zero-bubble schedules): backward's dx alone, computed without the
   * weight gradients; the micro-batch's activations and its layers' output gradients stay held.
   */
  backwardInput(mb: number, dy: Float32Array | null): Promise<Float32Array | null>;
  /** Split backward, part 2: adds the micro-batch's parameter gradients to the sum and frees it. */
  backwardWeight(mb: number): Promise<void>;
  /** Writes the step's summed gradients into `grads` (stage layout) and ends the step. */
  endStep(grads: Float32Array): Promise<StageStepResult>;
  /** Drops whatever the step holds (a cancelled step). */
  reset(): void;
  dispose(): void;
}

interface Held {
  /** Saved activations (no recompute) or null (recompute). */
  saved: SavedActivations | null;
  /** The stage input, kept for recomputation. */
  input: Tensor | null;
  /** Last stage: d(loss)/d(logits) of the micro-batch. */
  dlogits: Tensor | null;
  /** After backwardInput: each layer's output gradient (layers with parameters), for backwardWeight. */
  dys: (Tensor | undefined)[] | null;
  bytes: number;
  bytesNoRecompute: number;
}

/** Bytes of distinct tensor buffers (a reshape shares its source's buffer and is counted once). */
export function distinctBytes(tensors: readonly Tensor[]): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    bytes += t.size * 4;
  }
  return bytes;
}

export function createStageRunner(model: Model, range: StageRange, opts: StageRunnerOptions): StageRunner {
  return new PipelineStageRunner(model, range, opts);
}

/** The step's state lives in private fields; beginStep, endStep, reset and dispose clear it. */
class PipelineStageRunner implements StageRunner {
  readonly stage: Stage;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  readonly #range: StageRange;
  readonly #batch: number;
  /** Micro-batches per step. */
  readonly #m: number;
  readonly #recompute: boolean;
  /** Floats per sample at the stage's input and output. */
  readonly #inSize: number;
  readonly #outSize: number;

  #w: Tensor[] | null = null;
  #data: StepData = {};
  readonly #held = new Map<number, Held>();
  #gradSum: Tensor[] | null = null;
  #lossSum: Tensor | null = null;
  /** Activation bytes held now and at most this step, with and without recomputation. */
  #current = 0;
  #currentNo = 0;
  #peak = 0;
  #peakNo = 0;

  constructor(model: Model, range: StageRange, opts: StageRunnerOptions) {
    this.stage = model.stage(range.first, range.end);
    this.isFirst = range.first === 0;
    this.isLast = range.end === model.layers.length;
    this.#range = range;
    this.#batch = opts.batch;
    this.#m = opts.microBatches;
    this.#recompute = opts.recompute;
    if (this.#m < 1 || this.#m > this.#batch) {
      throw new ShapeError(`${this.#m} micro-batches of a batch of ${this.#batch}`);
    }
    this.#inSize = this.stage.inputShape.reduce((a, b) => a * b, 1);
    this.#outSize = this.stage.outputShape.reduce((a, b) => a * b, 1);
  }

  rows(mb: number): number {
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.#m) {
      throw new StageOrderError(`no micro-batch ${mb} of ${this.#m}`);
    }
    const r = microBatchRange(this.#batch, this.#m, mb);
    return r.end - r.start;
  }

  beginStep(params: Float32Array, stepData: StepData): void {
    this.#resetStep();
    this.#w = this.stage.uploadParams(params);
    // Before the step's first input arrives: a stage past the first waits for it here anyway.
    this.stage.prime(this.#w);
    this.#data = stepData;
  }

  async forward(mb: number, input: Float32Array | null): Promise<Float32Array | null> {
    const wt = this.#weights();
    if (this.#held.has(mb)) throw new StageOrderError(`micro-batch ${mb} ran forward twice`);
    const x = this.#inputOf(mb, input);
    const f = this.stage.forward(x, wt);
    const savedBytes = distinctBytes(f.saved.flat());
    const h: Held = {
      saved: f.saved,
      input: null,
      dlogits: null,
      dys: null,
      bytes: 0,
      bytesNoRecompute: savedBytes,
    };
    // Recomputation keeps the input instead of what forward saved: only worth it when the input
    // is smaller (a reshape-only stage saves nothing and keeps what it saved).
    if (this.#recompute && x.size * 4 < savedBytes) {
      disposeSaved(f.saved);
      h.saved = null;
      h.input = x; // [rows, ...inputShape]: all the stage keeps
      h.bytes = x.size * 4;
    } else {
      x.dispose(); // the saved tensors keep their own handles on x's buffer
      h.bytes = savedBytes;
    }
    let out: Float32Array | null = null;
    try {
      if (this.isLast) {
        const lossSum = this.#lossSum;
        const r = tf.tidy(() => {
          const l = softmaxCrossEntropy(f.y, this.#labelsOf(mb), this.#batch);
          return { loss: lossSum ? tf.add(lossSum, l.loss) : l.loss, dlogits: l.dlogits };
        });
        lossSum?.dispose();
        this.#lossSum = r.loss;
        h.dlogits = r.dlogits;
        h.bytes += r.dlogits.size * 4;
        h.bytesNoRecompute += r.dlogits.size * 4;
      } else {
        out = await f.y.data<'float32'>(); // [rows, ...outputShape]
      }
    } finally {
      f.y.dispose();
    }
    this.#held.set(mb, h);
    this.#track(h.bytes, h.bytesNoRecompute);
    return out;
  }

  async backward(mb: number, dyIn: Float32Array | null): Promise<Float32Array | null> {
    const wt = this.#weights();
    const h = this.#held.get(mb);
    if (!h) throw new StageOrderError(`micro-batch ${mb}: backward before forward`);
    if (h.dys) throw new StageOrderError(`micro-batch ${mb}: backward after its input part`);
    const n = this.rows(mb);
    if (!this.isLast && (!dyIn || dyIn.length !== n * this.#outSize)) {
      throw new ShapeError(
        `micro-batch ${mb}: gradient of ${dyIn?.length ?? 0} floats, expected ${n} x ${this.#outSize}`,
      );
    }
    this.#held.delete(mb);
    let saved = h.saved;
    try {
      if (!saved) {
        // Recomputation: the forward again, from the kept input; its activations live only now.
        const again = this.stage.forward(h.input!, wt);
        again.y.dispose();
        saved = again.saved;
        // What the recomputed forward adds to what is already held (its input is counted there).
        const transient = distinctBytes([h.input!, ...saved.flat()]) - h.input!.size * 4;
        this.#peak = Math.max(this.#peak, this.#current + transient);
      }
      const s = saved;
      const gradSum = this.#gradSum;
      const r = tf.tidy(() => {
        const dy = this.isLast ? h.dlogits! : tf.tensor(dyIn!, [n, ...this.stage.outputShape]);
        const b = this.stage.backward(dy, s, wt, { needInputGrad: !this.isFirst });
        const sum = gradSum ? b.grads.map((g, i) => tf.add(gradSum[i]!, g)) : b.grads;
        return { dx: b.dx, sum };
      });
      if (gradSum) tf.dispose(gradSum);
      this.#gradSum = r.sum;
      return await readInputGrad(r.dx, this.isFirst);
    } finally {
      if (saved && saved !== h.saved) disposeSaved(saved);
      dropHeld(h);
      this.#current -= h.bytes;
      this.#currentNo -= h.bytesNoRecompute;
    }
  }

  async backwardInput(mb: number, dyIn: Float32Array | null): Promise<Float32Array | null> {
    const wt = this.#weights();
    const h = this.#held.get(mb);
    if (!h) throw new StageOrderError(`micro-batch ${mb}: backward input part before forward`);
    if (h.dys) throw new StageOrderError(`micro-batch ${mb}: backward input part ran twice`);
    const dy = this.#gradIn(mb, h, dyIn);
    if (!h.saved) {
      // Recomputation: the forward again from the kept input. Its activations stay held until the
      // weight part, which needs every layer's input too (a second recomputation would cost more).
      const input = h.input!;
      const again = this.stage.forward(input, wt);
      again.y.dispose();
      h.saved = again.saved;
      input.dispose(); // the saved tensors keep their own handles on its buffer
      h.input = null;
    }
    let r;
    try {
      r = inputGradPass(this.stage, dy, h.saved, wt, !this.isFirst);
    } finally {
      dy.dispose();
      h.dlogits?.dispose();
      h.dlogits = null;
    }
    h.dys = r.dys;
    // Held from now to the weight part: the activations and the layers' output gradients.
    const dysBytes = distinctBytes(r.dys.filter((t): t is Tensor => t !== undefined));
    const dlogitsBytes = this.isLast ? this.rows(mb) * this.#outSize * 4 : 0;
    const bytes = distinctBytes([...h.saved.flat(), ...r.dys.filter((t): t is Tensor => t !== undefined)]);
    const bytesNo = h.bytesNoRecompute - dlogitsBytes + dysBytes;
    this.#track(bytes - h.bytes, bytesNo - h.bytesNoRecompute);
    h.bytes = bytes;
    h.bytesNoRecompute = bytesNo;
    return readInputGrad(r.dx, this.isFirst);
  }

  backwardWeight(mb: number): Promise<void> {
    try {
      this.#weightPart(mb);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #weightPart(mb: number): void {
    const wt = this.#weights();
    const h = this.#held.get(mb);
    if (!h?.dys || !h.saved) throw new StageOrderError(`micro-batch ${mb}: weight part before input part`);
    this.#held.delete(mb);
    try {
      const grads = weightGradPass(this.stage, h.dys, h.saved, wt);
      const gradSum = this.#gradSum;
      this.#gradSum = gradSum ? tf.tidy(() => grads.map((g, i) => tf.add(gradSum[i]!, g))) : grads;
      if (gradSum) tf.dispose([...gradSum, ...grads]);
    } finally {
      dropHeld(h);
      this.#current -= h.bytes;
      this.#currentNo -= h.bytesNoRecompute;
    }
  }

  /** The gradient arriving at the stage's output: dlogits (last stage) or the next stage's dy. */
  #gradIn(mb: number, h: Held, dyIn: Float32Array | null): Tensor {
    const n = this.rows(mb);
    if (this.isLast) return tf.clone(h.dlogits!);
    if (!dyIn || dyIn.length !== n * this.#outSize) {
      throw new ShapeError(
        `micro-batch ${mb}: gradient of ${dyIn?.length ?? 0} floats, expected ${n} x ${this.#outSize}`,
      );
    }
    return tf.tensor(dyIn, [n, ...this.stage.outputShape]);
  }

  async endStep(grads: Float32Array): Promise<StageStepResult> {
    if (grads.length !== this.stage.paramCount) {
      throw new ShapeError(`stage has ${this.stage.paramCount} parameters, grads buffer ${grads.length}`);
    }
    if (this.#held.size > 0) {
      throw new StageOrderError(`${this.#held.size} micro-batches still wait for backward`);
    }
    if (!this.#gradSum) throw new StageOrderError('no backward ran this step');
    const [loss] = await Promise.all([
      this.#lossSum ? this.#lossSum.data<'float32'>() : null,
      readTensorsInto(this.#gradSum, grads),
    ]);
    const result: StageStepResult = {
      loss: loss ? loss[0]! : null,
      peakActivationBytes: this.#peak,
      peakActivationBytesNoRecompute: this.#peakNo,
    };
    this.#resetStep();
    return result;
  }

  reset(): void {
    this.#resetStep();
  }

  dispose(): void {
    this.#resetStep();
  }

  #weights(): Tensor[] {
    if (!this.#w) throw new StageOrderError('beginStep was not called');
    return this.#w;
  }

  /** The micro-batch's input tensor: a slice of the batch (first stage) or the received activations. */
  #inputOf(mb: number, input: Float32Array | null): Tensor {
    const n = this.rows(mb);
    const inSize = this.#inSize;
    if (this.isFirst) {
      if (!this.#data.x) throw new StageOrderError('the first stage needs the batch inputs');
      const { start, end } = microBatchRange(this.#batch, this.#m, mb);
      return tf.tensor(this.#data.x.subarray(start * inSize, end * inSize), [n, ...this.stage.inputShape]);
    }
    const { first, end } = this.#range;
    if (!input) throw new StageOrderError(`stage [${first}, ${end}) needs its input`);
    if (input.length !== n * inSize) {
      throw new ShapeError(`micro-batch ${mb}: input of ${input.length} floats, expected ${n} x ${inSize}`);
    }
    return tf.tensor(input, [n, ...this.stage.inputShape]);
  }

  #labelsOf(mb: number): Tensor {
    if (!this.#data.y) throw new StageOrderError('the last stage needs the batch labels');
    const { start, end } = microBatchRange(this.#batch, this.#m, mb);
    return tf.tensor1d(Int32Array.from(this.#data.y.subarray(start, end)), 'int32');
  }

  #track(bytes: number, bytesNo: number): void {
    this.#current += bytes;
    this.#currentNo += bytesNo;
    this.#peak = Math.max(this.#peak, this.#current);
    this.#peakNo = Math.max(this.#peakNo, this.#currentNo);
  }

  #resetStep(): void {
    for (const h of this.#held.values()) dropHeld(h);
    this.#held.clear();
    if (this.#w) tf.dispose(this.#w);
    this.#w = null;
    if (this.#gradSum) tf.dispose(this.#gradSum);
    this.#gradSum = null;
    this.#lossSum?.dispose();
    this.#lossSum = null;
    this.#data = {};
    this.#current = this.#currentNo = this.#peak = this.#peakNo = 0;
  }
}

/** dx [rows, ...inputShape] as the bytes to send back (null on the first stage); disposes it. */
async function readInputGrad(dx: Tensor | undefined, isFirst: boolean): Promise<Float32Array | null> {
  if (isFirst || !dx) {
    dx?.dispose();
    return null;
  }
  try {
    return await dx.data<'float32'>();
  } finally {
    dx.dispose();
  }
}

function dropHeld(h: Held): void {
  if (h.saved) disposeSaved(h.saved);
  h.input?.dispose();
  h.dlogits?.dispose();
  if (h.dys) tf.dispose(h.dys.filter((t): t is Tensor => t !== undefined));
}

/**
 * Measures each layer's forward + backward time on this device for one micro-batch of `rows`
 * samples (median of `reps` after one warm-up), with its parameter and activation bytes.
 */
export async function profileLayers(
  model: Model,
  rows: number,
  opts: { reps?: number; signal?: AbortSignal; seed?: number } = {},
): Promise<LayerCost[]> {
  const reps = Math.max(1, opts.reps ?? 3);
  const params = model.initParams(opts.seed ?? 1);
  const out: LayerCost[] = [];
  for (const layer of model.layers) {
    opts.signal?.throwIfAborted();
    const stage = model.stage(layer.index, layer.index + 1);
    const w = stage.uploadParams(params.subarray(stage.paramOffset, stage.paramOffset + stage.paramCount));
    const x = tf.randomUniform([rows, ...stage.inputShape], -1, 1, 'float32', 7);
    const dy = tf.randomUniform([rows, ...stage.outputShape], -1, 1, 'float32', 8);
    const times: number[] = [];
    let activationBytes = 0;
    try {
      for (let i = 0; i <= reps; i++) {
        const t0 = performance.now();
        const f = stage.forward(x, w);
        activationBytes = distinctBytes(f.saved.flat());
        const b = stage.backward(dy, f.saved, w, { needInputGrad: layer.index > 0 });
        // Reading one value waits for the kernels (an async backend runs them behind the call).
        await Promise.all([...b.grads, ...(b.dx ? [b.dx] : [])].map((t) => t.data()));
        if (i > 0) times.push(performance.now() - t0);
        f.y.dispose();
        disposeSaved(f.saved);
        tf.dispose([...b.grads, ...(b.dx ? [b.dx] : [])]);
      }
    } finally {
      tf.dispose([...w, x, dy]);
    }
    times.sort((a, b) => a - b);
    out.push({
      name: `${layer.index}.${layer.spec.kind}`,
      costMs: times[times.length >> 1]!,
      paramBytes: layer.paramCount * 4,
      activationBytes,
      outputBytes: rows * layer.outputShape.reduce((a, b) => a * b, 1) * 4,
    });
  }
  return out;
}
