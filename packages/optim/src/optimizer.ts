// Optimizers over one flat Float32Array of parameters, updated in place.
//
// Every worker of a data-parallel run applies the same update to the same averaged gradient, so
// the update must be bit-identical on every machine and browser: the arithmetic is plain float64
// JavaScript (IEEE, deterministic), rounded to float32 once per element when stored, and nothing
// uses Math.pow or other functions whose last bit may differ between engines (Adam's bias
// corrections are running products instead).
import { ConfigError } from '@peertrain/protocol';
import type { OptimizerConfig } from '@peertrain/protocol';

/** A state buffer or gradient does not match the optimizer's parameter count or kind. */
export class OptimizerStateError extends Error {
  override readonly name = 'OptimizerStateError';
}

export interface Optimizer {
  readonly config: OptimizerConfig;
  readonly paramCount: number;
  /** Updates applied so far (Adam's t). */
  readonly steps: number;
  /** Learning rate used by the next `step`; may be changed between steps (schedules). */
  lr: number;
  /** params -= update(grad), in place. Both arrays hold `paramCount` elements. */
  step(params: Float32Array, grad: Float32Array): void;
  /**
   * Copies of the state buffers, for checkpoints; the last is always Float32Array.of(steps):
   * sgd: [velocity, steps] ([steps] when momentum is 0); adam: [m, v, steps].
   */
  state(): Float32Array[];
  /** Restores buffers produced by `state()` of an optimizer with the same config and size. */
  load(state: readonly Float32Array[]): void;
}

function checkLr(lr: number): number {
  if (!Number.isFinite(lr) || lr <= 0) throw new ConfigError('invalid learning rate', [`lr: ${lr}`]);
  return lr;
}

function checkLength(what: string, got: number, want: number): void {
  if (got !== want) throw new OptimizerStateError(`${what} has ${got} elements, expected ${want}`);
}

abstract class BaseOptimizer implements Optimizer {
  #lr: number;
  steps = 0;

  constructor(
    readonly config: OptimizerConfig,
    lr: number,
    readonly paramCount: number,
  ) {
    if (!Number.isInteger(paramCount) || paramCount < 0) {
      throw new ConfigError('invalid parameter count', [`paramCount: ${paramCount}`]);
    }
    this.#lr = checkLr(lr);
  }

  get lr(): number {
    return this.#lr;
  }

  set lr(value: number) {
    this.#lr = checkLr(value);
  }

  step(params: Float32Array, grad: Float32Array): void {
    checkLength('params', params.length, this.paramCount);
    checkLength('grad', grad.length, this.paramCount);
    this.steps++;
    this.update(params, grad, this.#lr);
  }

  protected abstract update(params: Float32Array, grad: Float32Array, lr: number): void;
  abstract state(): Float32Array[];
  abstract load(state: readonly Float32Array[]): void;

  /** Checks the buffer count, restores `steps` from the last buffer and returns the others. */
  protected loadSteps(state: readonly Float32Array[], count: number): Float32Array[] {
    if (state.length !== count + 1) {
      throw new OptimizerStateError(
        `${this.config.kind} state has ${state.length} buffers, expected ${count + 1}`,
      );
    }
    const t = state[count]!;
    const steps = t[0];
    if (t.length !== 1 || steps === undefined || !Number.isInteger(steps) || steps < 0) {
      throw new OptimizerStateError('the step count must be one non-negative integer');
    }
    const buffers = state.slice(0, count);
    buffers.forEach((b, i) =>
      checkLength(`${this.config.kind} state buffer ${i}`, b.length, this.paramCount),
    );
    this.steps = steps;
    return buffers;
  }
}

/** SGD, PyTorch convention: v = momentum * v + g; p -= lr * v (plain p -= lr * g when momentum is 0). */
class Sgd extends BaseOptimizer {
  readonly #momentum: number;
  readonly #velocity: Float32Array; // [paramCount], empty when momentum is 0

  constructor(config: Extract<OptimizerConfig, { kind: 'sgd' }>, lr: number, paramCount: number) {
    super(config, lr, paramCount);
    this.#momentum = config.momentum;
    this.#velocity = new Float32Array(this.#momentum > 0 ? paramCount : 0);
  }

  protected update(params: Float32Array, grad: Float32Array, lr: number): void {
    const n = this.paramCount;
    if (this.#momentum === 0) {
      for (let i = 0; i < n; i++) params[i] = params[i]! - lr * grad[i]!;
      return;
    }
    const m = this.#momentum;
    const v = this.#velocity;
    // PyTorch's first step sets v = g (not (1 - dampening) * g); with v starting at 0 and no
    // dampening, m * 0 + g is the same value.
    for (let i = 0; i < n; i++) {
      const vi = Math.fround(m * v[i]! + grad[i]!);
      v[i] = vi;
      params[i] = params[i]! - lr * vi;
    }
  }

  state(): Float32Array[] {
    const steps = Float32Array.of(this.steps);
    return this.#momentum > 0 ? [this.#velocity.slice(), steps] : [steps];
  }

  load(state: readonly Float32Array[]): void {
    const [v] = this.loadSteps(state, this.#momentum > 0 ? 1 : 0);
    if (v) this.#velocity.set(v);
  }
}

/** Adam with bias correction (Kingma & Ba; PyTorch's update order). */
class Adam extends BaseOptimizer {
  readonly #m: Float32Array; // [paramCount] first moment
  readonly #v: Float32Array; // [paramCount] second moment
  #beta1Power = 1; // beta1^t, a running product (see the file comment)
  #beta2Power = 1;

  constructor(
    override readonly config: Extract<OptimizerConfig, { kind: 'adam' }>,
    lr: number,
    paramCount: number,
  ) {
    super(config, lr, paramCount);
    this.#m = new Float32Array(paramCount);
    this.#v = new Float32Array(paramCount);
  }

  protected update(params: Float32Array, grad: Float32Array, lr: number): void {
    const { beta1, beta2, epsilon } = this.config;
    this.#beta1Power *= beta1;
    this.#beta2Power *= beta2;
    const stepSize = lr / (1 - this.#beta1Power);
    const sqrtCorrection2 = Math.sqrt(1 - this.#beta2Power);
    const m = this.#m;
    const v = this.#v;
    const n = this.paramCount;
    for (let i = 0; i < n; i++) {
      const g = grad[i]!;
      const mi = Math.fround(beta1 * m[i]! + (1 - beta1) * g);
      const vi = Math.fround(beta2 * v[i]! + (1 - beta2) * g * g);
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! - (stepSize * mi) / (Math.sqrt(vi) / sqrtCorrection2 + epsilon);
    }
  }

  state(): Float32Array[] {
    return [this.#m.slice(), this.#v.slice(), Float32Array.of(this.steps)];
  }

  load(state: readonly Float32Array[]): void {
    const [m, v] = this.loadSteps(state, 2) as [Float32Array, Float32Array];
    this.#m.set(m);
    this.#v.set(v);
    // Rebuild the running products exactly as `steps` updates would have.
    this.#beta1Power = 1;
    this.#beta2Power = 1;
    for (let i = 0; i < this.steps; i++) {
      this.#beta1Power *= this.config.beta1;
      this.#beta2Power *= this.config.beta2;
    }
  }
}

/** The optimizer `cfg` describes, for `paramCount` flat parameters at learning rate `lr`. */
export function createOptimizer(cfg: OptimizerConfig, lr: number, paramCount: number): Optimizer {
  switch (cfg.kind) {
    case 'sgd':
      if (!(cfg.momentum >= 0 && cfg.momentum < 1)) {
        throw new ConfigError('invalid sgd momentum', [`momentum: ${cfg.momentum} (0 <= m < 1)`]);
      }
      return new Sgd(cfg, lr, paramCount);
    case 'adam':
      if (!(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1 && cfg.epsilon > 0)) {
        throw new ConfigError('invalid adam hyper-parameters', [
          `beta1: ${cfg.beta1}, beta2: ${cfg.beta2} (0 <= b < 1), epsilon: ${cfg.epsilon} (> 0)`,
        ]);
      }
      return new Adam(cfg, lr, paramCount);
    default: {
      const unknownKind: never = cfg;
      throw new ConfigError('unknown optimizer', [JSON.stringify(unknownKind)]);
    }
  }
}
