export { OptimizerStateError, createOptimizer } from './optimizer.ts';
export type { Optimizer } from './optimizer.ts';
export { DILOCO_OUTER, createOuterOptimizer } from './outer.ts';
export type { OuterOptimizer, OuterOptimizerConfig } from './outer.ts';
