// The registry: a method's name, derived from the run configuration in one place, and the
// implementation that a worker runs for it. Adding a method: its file here, a line in METHODS, a
// case in methodName (once the run configuration can ask for it), its tests and the README.
import type { RunConfig } from '@peertrain/protocol';
import { allReduceMethod } from './allreduce.ts';
import { dilocoMethod } from './diloco.ts';
import { hybridMethod } from './hybrid.ts';
import { pipelineMethodOrElastic } from './pipeline-elastic.ts';
import { parameterServerMethod } from './ps.ts';
import { asyncParameterServerMethod } from './ps-async.ts';
import type { MethodName, WorkerMethod } from './types.ts';

/** A method name that no implementation is registered for (a newer coordinator, or a typo). */
export class UnknownMethodError extends Error {
  override readonly name = 'UnknownMethodError';
  constructor(readonly method: string) {
    super(`no training method named ${JSON.stringify(method)} on this worker`);
  }
}

const METHODS: Readonly<Record<MethodName, WorkerMethod>> = {
  allreduce: allReduceMethod,
  ps: parameterServerMethod,
  diloco: dilocoMethod,
  pipeline: pipelineMethodOrElastic,
  hybrid: hybridMethod,
  'ps-async': asyncParameterServerMethod,
};

/** The method a run configuration asks for: its strategy, and for data parallel its sync. */
export function methodName(config: Pick<RunConfig, 'strategy' | 'sync'>): MethodName {
  switch (config.strategy) {
    case 'data':
      switch (config.sync) {
        case 'allreduce':
        case 'ps':
        case 'diloco':
        case 'ps-async':
          return config.sync;
        default: {
          const unknown: never = config.sync;
          throw new UnknownMethodError(String(unknown));
        }
      }
    case 'pipeline':
      return 'pipeline';
    case 'hybrid':
      return 'hybrid';
    default: {
      const unknown: never = config.strategy;
      throw new UnknownMethodError(String(unknown));
    }
  }
}

/** The implementation registered under `name`; UnknownMethodError if there is none. */
export function workerMethod(name: string): WorkerMethod {
  if (!Object.hasOwn(METHODS, name)) throw new UnknownMethodError(name);
  return METHODS[name as MethodName];
}

export type {
  ActivationPeak,
  Assign,
  MethodContext,
  MethodLinks,
  MethodName,
  MethodRun,
  Placement,
  StepOutcome,
  WorkerMethod,
} from './types.ts';
