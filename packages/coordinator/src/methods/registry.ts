import { ConfigError } from '@peertrain/protocol';
import type { RunConfig } from '@peertrain/protocol';
import { dataParallel } from './dataParallel.ts';
import { diloco } from './diloco.ts';
import type { CoordinatorMethod } from './method.ts';
import { stagePipeline } from './pipeline.ts';
import { asyncParameterServer } from './psAsync.ts';

/** Every method's coordinator side, by name. A new method: its file, and one line here. */
const METHODS: ReadonlyMap<string, CoordinatorMethod> = new Map(
  [
    dataParallel('allreduce', { server: false }),
    dataParallel('parameter-server', { server: true }),
    stagePipeline('pipeline'),
    stagePipeline('hybrid'),
    asyncParameterServer(),
    diloco(),
  ].map((m) => [m.name, m]),
);

/** The one place a config becomes a method name. */
export function methodName(config: RunConfig): string {
  if (config.strategy === 'data' && (config.sync === 'ps-async' || config.sync === 'diloco'))
    return config.sync;
  if (config.strategy === 'data') return config.sync === 'ps' ? 'parameter-server' : 'allreduce';
  return config.strategy;
}

/** The coordinator side of the config's method; ConfigError if none is registered. */
export function methodFor(config: RunConfig): CoordinatorMethod {
  const name = methodName(config);
  const m = METHODS.get(name);
  if (!m) throw new ConfigError('unknown training method', [`no coordinator side for "${name}"`]);
  return m;
}
