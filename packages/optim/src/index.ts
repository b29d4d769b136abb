export { OptimizerStateError, createOptimizer } from './optimizer.ts';
export type { Optimizer } from './optimizer.ts';
