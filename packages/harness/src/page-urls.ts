// The pages' URLs as a session opens them: the dashboard's (room, headless, the run's config) and
// the worker page's (room, backend, where it computes).
import { Buffer } from 'node:buffer';
import type { ComputePlace, RunConfig, RunConfigInput } from '@peertrain/protocol';

/** base64url of the JSON config, as the dashboard's `config=` parameter expects. */
export function encodeConfigParam(config: RunConfigInput): string {
  return Buffer.from(JSON.stringify(config), 'utf8').toString('base64url');
}

/** What a headless dashboard is asked for besides its run: see the harness README's URL. */
export interface DashboardUrlOptions {
  /** Fault injection (`faults=a,b`). */
  faults?: readonly string[];
  /** `resume=1`: start from the checkpoint the harness hands over. */
  resume?: boolean;
  /** `model=1`: hand the trained parameters over as a `model` event. */
  model?: boolean;
}

export function dashboardUrl(
  base: string,
  room: string,
  config: RunConfigInput,
  { faults = [], resume = false, model = false }: DashboardUrlOptions = {},
): string {
  const url = new URL('/', base);
  url.searchParams.set('room', room);
  url.searchParams.set('headless', '1');
  url.searchParams.set('config', encodeConfigParam(config));
  if (faults.length > 0) url.searchParams.set('faults', faults.join(','));
  // The page asks for the checkpoint through window.peertrainResume (exposed by drive()).
  if (resume) url.searchParams.set('resume', '1');
  // The trained parameters cross only when asked for (the `model` event).
  if (model) url.searchParams.set('model', '1');
  return url.href;
}

export function workerUrl(
  base: string,
  room: string,
  backend?: RunConfig['backend'],
  compute?: ComputePlace,
): string {
  const url = new URL('/apps/worker/', base);
  url.searchParams.set('room', room);
  if (backend !== undefined && backend !== 'auto') url.searchParams.set('backend', backend);
  if (compute !== undefined) url.searchParams.set('compute', compute);
  return url.href;
}
