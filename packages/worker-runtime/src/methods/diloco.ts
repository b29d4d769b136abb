// DiLoCo (Douillard et al. 2023) / local SGD: every worker trains alone on its shard for H inner
// steps, then the workers average their pseudo-gradients and apply an outer optimizer, so all hold
// the same parameters again. Communication drops by H against synchronous data parallelism.
//
// State per worker: G [P] global parameters (identical on every worker), L [P] local parameters,
// the inner optimizer on L (config.optimizer / config.lr; its state stays local, never reset) and
// the outer optimizer on G (config.outerLr / outerMomentum / outerNesterov). Every step: gradients
// of the worker's batch at L, inner step on L. A round ends at step s when (s + 1) % H === 0, and
// always at the run's last step (the run ends synchronized).
//
// Round end, plain: delta = G - L, averaged over the ring (allReduceMean, compressed with
// config.compress, keyed by step s), outer step G -= outer(mean delta), L = G.
// With H = 1, outer lr 1, momentum 0 this is synchronous data parallelism: mean(G - L_i) is lr
// times the mean of the workers' inner updates, and for SGD (with or without momentum) the mean of
// the updates is the update of the mean gradient (float32 rounding aside; tested within 1e-6).
//
// Round end, overlapped (config.overlapOuter; streaming / delayed DiLoCo): A [P] is L where the
// current round started. At the end of round k (step s):
//   1. d_k = A - L: round k's own displacement.
//   2. If round k-1's exchange is in flight: await its mean m_{k-1}, G -= outer(m_{k-1}), and
//      rebase L = G - d_k (the new global parameters plus round k's progress, not yet delivered).
//   3. Start the exchange of d_k (keyed by step s) without awaiting it; A = L; round k+1 runs.
// So an outer step lands one round late and the exchange hides behind a whole round of compute.
// At the run's last step, after 1-2, d_k is exchanged and applied at once and L = G: nothing is
// left in flight. At most one exchange is in flight (the next round awaits it before starting its
// own), so the compressor's state is used by one exchange at a time; dispose aborts it.
//
// Fill (config.fillWaits, with overlap): at the end of round k, while round k-1's exchange is still
// in flight (slower workers have not sent their part yet, or the link is slow), the worker takes
// extra inner steps on L instead of idling, at most config.fillMax of them (default H), giving the
// event loop a turn after each (the exchange's messages are handled there); their displacement is
// part of d_k. Their batches are the shard's draws after the run's last step (config.steps,
// config.steps + 1, ...), so they repeat none of the run's own within the shard's epoch. A fast
// worker so contributes more steps to a round than a slow one, as hivemind's collaborative batches
// let faster peers contribute more samples; the step reports them as extraSamples. Timing decides
// how many: such runs do not repeat bit for bit.
//
// evalParams is G: the last synchronized parameters (with overlap, those of the last applied
// round), the same on every worker, not a worker's local L. G moves only at round ends, so an
// evaluation due mid-round (--eval-every not a multiple of H) waits for the next round's end.
import { AbortError, yieldToEventLoop } from '@peertrain/base';
import type { Compressor } from '@peertrain/compress';
import { createOptimizer, createOuterOptimizer } from '@peertrain/optim';
import { ConfigError, PHASE_TIMEOUTS } from '@peertrain/protocol';
import type { Optimizer, OuterOptimizer } from '@peertrain/optim';
import { hopTimed } from '../phase-timeouts.ts';
import { elasticDiloco, endsRound } from './diloco-elastic.ts';
import { recordCompute, timedGradients, timedUpdate } from './data.ts';
import { exchangeCompressor, meanOverRing, ringLinks } from './exchange.ts';
import type { MethodContext, MethodRun, StepOutcome, WorkerMethod } from './types.ts';

/** An outer exchange started at the end of a round and not yet applied (overlap only). */
interface InFlight {
  /** The step that ended the round: the exchange's messages carry it. */
  step: number;
  /** [P] the round's displacement; holds the workers' mean once `done` resolves. */
  delta: Float32Array;
  done: Promise<unknown>;
}

/** a - b, element by element, into `out` [P] (a new array unless given). */
function difference(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array = new Float32Array(a.length),
): Float32Array {
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

class DilocoRun implements MethodRun {
  readonly #ctx: MethodContext;
  readonly #global: Float32Array; // G [P]
  readonly #local: Float32Array; // L [P]
  readonly #anchor: Float32Array; // A [P] (overlap): L at the start of the current round
  readonly #grads: Float32Array; // [P] an inner step's gradients, reused (the inner step consumes them)
  readonly #inner: Optimizer;
  readonly #outer: OuterOptimizer;
  readonly #compressor: Compressor | null;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  #inFlight: InFlight | null = null;
  /** Fill steps taken so far: the next one draws the shard's batch config.steps + this. */
  #filled = 0;
  /** ms of outer steps applied during the current step: arithmetic on this worker, so compute. */
  #outerMs = 0;

  constructor(ctx: MethodContext) {
    const { config } = ctx.assign;
    if (config.fillWaits && !ctx.session.gradientsOf)
      throw new ConfigError('fillWaits needs a session that computes any batch of its shard', [
        'fillWaits: this compute engine has no gradientsOf',
      ]);
    this.#ctx = ctx;
    this.#global = ctx.session.initParams();
    const p = this.#global.length;
    this.#local = this.#global.slice();
    this.#grads = new Float32Array(p);
    this.#anchor = config.overlapOuter ? this.#global.slice() : new Float32Array(0);
    this.#inner = createOptimizer(config.optimizer, config.lr, p);
    this.#outer = createOuterOptimizer(
      { lr: config.outerLr, momentum: config.outerMomentum, nesterov: config.outerNesterov },
      p,
    );
    this.#compressor = exchangeCompressor(ctx, p);
    this.#signal = AbortSignal.any([ctx.signal, this.#stop.signal]);
  }

  get paramBytes(): number {
    return this.#global.byteLength + this.#local.byteLength + this.#anchor.byteLength;
  }

  get evalParams(): Float32Array {
    return this.#global;
  }

  /** G is the same on every rank at a round's end, where evaluations wait (evalReady). */
  readonly sharedEval = true;

  async step(step: number): Promise<StepOutcome> {
    const g = await timedGradients(this.#ctx, this.#local, step, this.#grads);
    const { loss } = g;
    const computeMs =
      g.computeMs + timedUpdate(this.#ctx, step, () => this.#inner.step(this.#local, g.grads));
    const { config } = this.#ctx.assign;
    const last = step === config.steps - 1;
    let fill = { ms: 0, steps: 0 };
    if (endsRound(step, config)) {
      const prev = this.#inFlight;
      if (config.fillWaits && prev !== null && !last) fill = await this.#fillWait(prev, step);
      if (config.overlapOuter) await this.#endRoundOverlapped(step, last);
      else await this.#endRound(step);
    }
    const extraSamples = fill.steps * config.batch;
    const outerMs = this.#outerMs;
    this.#outerMs = 0;
    return {
      loss,
      computeMs: computeMs + fill.ms + outerMs,
      ...(extraSamples > 0 ? { extraSamples } : {}),
    };
  }

  /**
   * An inner step's report waits for its round's end (the coordinator's window covers the round;
   * sending one per step cost 7-8% of a worker's time); a round's last step sends them all.
   */
  holdReport(step: number): boolean {
    return !endsRound(step, this.#ctx.assign.config);
  }

  /** G changes only at a round's end (with overlap too: the late outer step lands at one). */
  evalReady(after: number): boolean {
    return after % this.#ctx.assign.config.innerSteps === 0;
  }

  beforeEval(): Promise<void> {
    // G is evaluated as it stands: an exchange in flight belongs to the next round's end.
    return Promise.resolve();
  }

  dispose(): void {
    this.#stop.abort(new AbortError('the DiLoCo run was disposed'));
    this.#inFlight = null;
  }

  /**
   * Fill (file comment): inner steps on further batches while `prev` is in flight, at most fillMax,
   * recorded as the round's last step's compute and optimizer spans; their total ms and count.
   */
  async #fillWait(prev: InFlight, step: number): Promise<{ ms: number; steps: number }> {
    let settled = false;
    const mark = (): void => void (settled = true);
    prev.done.then(mark, mark);
    await yieldToEventLoop(); // what already arrived is handled before deciding to fill
    const ctx = this.#ctx;
    const { config, shard } = ctx.assign;
    const fill = { ms: 0, steps: 0 };
    const most = config.fillMax ?? config.innerSteps;
    while (!settled && fill.steps < most) {
      this.#signal.throwIfAborted();
      const t0 = ctx.spans.now();
      const { grads, ran } = await ctx.session.gradientsOf!(
        this.#local,
        config.steps + this.#filled++,
        shard,
        {
          signal: this.#signal,
          out: this.#grads,
        },
      );
      fill.ms += recordCompute(ctx, step, ran ?? { startMs: t0, endMs: ctx.spans.now() });
      fill.ms += timedUpdate(ctx, step, () => this.#inner.step(this.#local, grads));
      fill.steps++;
      await yieldToEventLoop();
    }
    return fill;
  }

  /** Plain round end: G -= outer(mean(G - L)), L = G. */
  async #endRound(step: number): Promise<void> {
    // The round's last inner step is done with the gradient buffer: the delta borrows it.
    const delta = difference(this.#global, this.#local, this.#grads);
    await this.#exchange(delta, step);
    this.#applyOuter(delta, step);
    this.#local.set(this.#global);
  }

  /** Overlapped round end: steps 1-3 of the file comment (the last step awaits everything). */
  async #endRoundOverlapped(step: number, last: boolean): Promise<void> {
    const delta = difference(this.#anchor, this.#local); // d_k
    const prev = this.#inFlight;
    this.#inFlight = null;
    if (prev !== null) {
      await prev.done;
      this.#applyOuter(prev.delta, prev.step);
      const g = this.#global;
      for (let i = 0; i < g.length; i++) this.#local[i] = g[i]! - delta[i]!; // L = G - d_k
    }
    if (last) {
      await this.#exchange(delta, step);
      this.#applyOuter(delta, step);
      this.#local.set(this.#global);
      return;
    }
    this.#anchor.set(this.#local);
    const done = this.#exchange(delta, step);
    done.catch(() => undefined); // awaited at the next round's end; dispose aborts it meanwhile
    this.#inFlight = { step, delta, done };
  }

  /** The workers' mean of `delta` in place, as one `allreduce` span (its phases inside). */
  async #exchange(delta: Float32Array, step: number): Promise<void> {
    const { spans } = this.#ctx;
    const t0 = spans.now();
    const stats = await meanOverRing(this.#ctx, delta, step, this.#compressor, this.#signal);
    spans.record('allreduce', t0, spans.now() - t0, { step, bytes: stats.bytesSent });
  }

  /**
   * G -= outer(meanDelta), as an `optimizer` span of the round's step; its ms count as the step's
   * compute, as the inner optimizer's do (timedUpdate).
   */
  #applyOuter(meanDelta: Float32Array, step: number): void {
    const { spans } = this.#ctx;
    const t0 = spans.now();
    this.#outer.step(this.#global, meanDelta);
    const ms = spans.now() - t0;
    spans.record('optimizer', t0, ms, { step });
    this.#outerMs += ms;
  }
}

export const dilocoMethod: WorkerMethod = {
  name: 'diloco',
  links: ringLinks,
  // Each receive of the outer exchange (one hop) has its named timeout.
  setup(given) {
    const ctx = { ...given, mesh: hopTimed(given.mesh, PHASE_TIMEOUTS.allreduceHop) };
    // A lost member ends the epoch, not the run: the round is redone (diloco-elastic.ts).
    return ctx.assign.config.elastic ? elasticDiloco(ctx) : new DilocoRun(ctx);
  },
};
