// The outer optimizer of DiLoCo (Douillard et al. 2023) and local SGD: every H inner steps the
// workers all-reduce the pseudo-gradient (global parameters minus local parameters, averaged) and
// update the global parameters with SGD + Nesterov momentum, as in the paper (outer lr 0.7,
// momentum 0.9). Every worker applies it to the same averaged pseudo-gradient, so, as in
// optimizer.ts, the arithmetic is float64 rounded to float32 once per stored element: bit-identical
// on every worker. With lr 1 and momentum 0 it is exactly global - pseudoGrad (plain data
// parallelism when H = 1).
import { ConfigError } from '@peertrain/protocol';
import { OptimizerStateError } from './optimizer.ts';

export interface OuterOptimizerConfig {
  /** Outer learning rate (default 0.7, DiLoCo's). */
  lr?: number;
  /** Momentum in [0, 1) (default 0.9). */
  momentum?: number;
  /** Nesterov momentum (default true; ignored at momentum 0). */
  nesterov?: boolean;
}

export interface OuterOptimizer {
  readonly lr: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly paramCount: number;
  /** Outer steps applied so far. */
  readonly steps: number;
  /**
   * global -= lr * update(pseudoGrad), in place; pseudoGrad = global - mean(local) [paramCount].
   * PyTorch's SGD: v = momentum v + g; update = nesterov ? g + momentum v : v.
   */
  step(global: Float32Array, pseudoGrad: Float32Array): void;
  /** Copies of the state: [velocity, Float32Array.of(steps)] ([steps] at momentum 0). */
  state(): Float32Array[];
  /** Restores buffers from `state()` of an outer optimizer of the same config and size. */
  load(state: readonly Float32Array[]): void;
}

export const DILOCO_OUTER = { lr: 0.7, momentum: 0.9, nesterov: true } as const;

export function createOuterOptimizer(config: OuterOptimizerConfig, paramCount: number): OuterOptimizer {
  const lr = config.lr ?? DILOCO_OUTER.lr;
  const momentum = config.momentum ?? DILOCO_OUTER.momentum;
  const nesterov = config.nesterov ?? DILOCO_OUTER.nesterov;
  const issues: string[] = [];
  if (!(Number.isFinite(lr) && lr > 0)) issues.push(`lr: ${lr} (> 0)`);
  if (!(momentum >= 0 && momentum < 1)) issues.push(`momentum: ${momentum} (0 <= m < 1)`);
  if (!Number.isInteger(paramCount) || paramCount < 0) issues.push(`paramCount: ${paramCount}`);
  if (issues.length > 0) throw new ConfigError('invalid outer optimizer', issues);
  const velocity = new Float32Array(momentum > 0 ? paramCount : 0); // [paramCount]
  let steps = 0;
  const check = (what: string, got: number, want: number): void => {
    if (got !== want) throw new OptimizerStateError(`${what} has ${got} elements, expected ${want}`);
  };
  return {
    lr,
    momentum,
    nesterov,
    paramCount,
    get steps() {
      return steps;
    },
    step(global, pseudoGrad) {
      check('global', global.length, paramCount);
      check('pseudoGrad', pseudoGrad.length, paramCount);
      steps++;
      if (momentum === 0) {
        for (let i = 0; i < paramCount; i++) global[i] = global[i]! - lr * pseudoGrad[i]!;
        return;
      }
      for (let i = 0; i < paramCount; i++) {
        const g = pseudoGrad[i]!;
        const v = Math.fround(momentum * velocity[i]! + g);
        velocity[i] = v;
        global[i] = global[i]! - lr * (nesterov ? g + momentum * v : v);
      }
    },
    state() {
      const t = Float32Array.of(steps);
      return momentum > 0 ? [velocity.slice(), t] : [t];
    },
    load(state) {
      const count = momentum > 0 ? 2 : 1;
      if (state.length !== count)
        throw new OptimizerStateError(`outer state has ${state.length} buffers, expected ${count}`);
      const t = state[count - 1]!;
      const s = t[0];
      if (t.length !== 1 || s === undefined || !Number.isInteger(s) || s < 0) {
        throw new OptimizerStateError('the step count must be one non-negative integer');
      }
      if (momentum > 0) {
        check('outer velocity', state[0]!.length, paramCount);
        velocity.set(state[0]!);
      }
      steps = s;
    },
  };
}
