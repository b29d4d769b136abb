import { CheckpointError, checkpointFromBase64, toWireError } from '@peertrain/protocol';
import type { Checkpoint } from '@peertrain/protocol';
import type { Coordinator, CoordinatorEvent, RunReport } from '@peertrain/coordinator';
import type { HeadlessRequest } from './params.ts';

// Headless mode (/?headless=1&...): the CLI harness exposes window.peertrainEmit through Playwright
// and reads the session from the events: logs, progress, evals, then exactly one terminal event,
// {type:'done', report} or {type:'error', error}.

/** How long a headless run waits for its workers to join. */
export const HEADLESS_WAIT_MS = 120_000;

declare global {
  interface Window {
    /** Set by the harness (Playwright exposeFunction); returns a Promise that must not be awaited. */
    peertrainEmit?: (event: CoordinatorEvent) => unknown;
    /** Set by the harness for `--resume`: resolves with { manifest, blobBase64 } of the checkpoint. */
    peertrainResume?: () => Promise<unknown>;
  }
}

/** The checkpoint the harness hands a `resume=1` page, checked; CheckpointError when there is none or it is bad. */
export async function pageCheckpoint(host: {
  peertrainResume?: () => Promise<unknown>;
}): Promise<Checkpoint> {
  if (typeof host.peertrainResume !== 'function')
    throw new CheckpointError('resume=1, but the page was given no checkpoint (window.peertrainResume)');
  const raw = (await host.peertrainResume()) as { manifest?: unknown; blobBase64?: unknown } | null;
  if (typeof raw?.blobBase64 !== 'string')
    throw new CheckpointError('the checkpoint handed to the page has no blob');
  return checkpointFromBase64(raw.manifest, raw.blobBase64);
}

export type Emit = (event: CoordinatorEvent) => void;

/** The most progress events a second the page hands the harness (PROGRESS_EVERY_MS apart). */
export const PROGRESS_EVERY_MS = 100;

type ProgressEvent = Extract<CoordinatorEvent, { type: 'progress' }>;

/**
 * Coalesces `progress` events to one per `everyMs`: each crossing to the harness is a DevTools
 * binding call that costs the page, the browser process and Node CPU, and a step-by-step stream
 * (a 10-step DiLoCo round reported at once is 10 events) took 1.5 ms of Node a step besides. A held
 * event goes out when `everyMs` has passed since the last one (a timer sees to it), at the run's
 * last step, or before any other event (order kept: an evaluation follows its step's progress).
 * The one that goes out is the newest, with `losses`: every held step's loss, oldest first, so
 * nothing the harness keeps (the partial report's losses) is lost.
 */
export function coalesceProgress(
  emit: Emit,
  {
    everyMs = PROGRESS_EVERY_MS,
    now = () => performance.now(),
  }: { everyMs?: number; now?: () => number } = {},
): Emit {
  let held: ProgressEvent | null = null;
  let losses: { step: number; loss: number }[] = [];
  let lastSent = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (held === null) return;
    const event: ProgressEvent = losses.length > 1 ? { ...held, losses } : held;
    held = null;
    losses = [];
    lastSent = now();
    emit(event);
  };
  return (event) => {
    if (event.type !== 'progress') {
      flush();
      emit(event);
      return;
    }
    held = event;
    losses.push(...(event.losses ?? [{ step: event.step, loss: event.loss }]));
    const wait = lastSent + everyMs - now();
    if (wait <= 0 || event.step >= event.totalSteps) flush();
    else timer ??= setTimeout(flush, wait);
  };
}

/**
 * Emits to `host.peertrainEmit` when present, never throwing and never waiting: a rejected or
 * thrown emit is logged to the console, and the run goes on. Progress is coalesced
 * (coalesceProgress).
 */
export function pageEmitter(host: { peertrainEmit?: (event: CoordinatorEvent) => unknown }): Emit {
  return coalesceProgress(rawPageEmitter(host));
}

function rawPageEmitter(host: { peertrainEmit?: (event: CoordinatorEvent) => unknown }): Emit {
  return (event) => {
    const fn = host.peertrainEmit;
    if (typeof fn !== 'function') return;
    try {
      const r = fn(event);
      if (r instanceof Promise) r.catch((err: unknown) => console.warn('peertrainEmit rejected', err));
    } catch (err) {
      console.warn('peertrainEmit threw', err);
    }
  };
}

/**
 * Runs the requested session on `coordinator`, forwarding its events to `emit`, and emits the
 * terminal event once: `done` with run()'s report (a `done` the coordinator emits itself is not
 * forwarded, so there is never a second one), or `error` (skipped when the coordinator already
 * emitted that same error as its last event). The trained parameters (`model`) go only to a request
 * that asked for them. Resolves with the report, rejects with run()'s error.
 */
export async function runHeadless(
  coordinator: Pick<Coordinator, 'run' | 'onEvent'>,
  request: HeadlessRequest,
  opts: { emit: Emit; signal?: AbortSignal; waitMs?: number; loadCheckpoint?: () => Promise<Checkpoint> },
): Promise<RunReport> {
  let lastForwarded: CoordinatorEvent | null = null;
  const off = coordinator.onEvent((event) => {
    if (event.type === 'done' || (event.type === 'model' && !request.model)) return;
    lastForwarded = event;
    opts.emit(event);
  });
  try {
    const runOpts: { signal?: AbortSignal; waitMs: number; faults: readonly string[]; resume?: Checkpoint } =
      {
        waitMs: opts.waitMs ?? HEADLESS_WAIT_MS,
        faults: request.faults,
      };
    if (opts.signal) runOpts.signal = opts.signal;
    if (request.resume && opts.loadCheckpoint) runOpts.resume = await opts.loadCheckpoint();
    const report = await coordinator.run(request.config, runOpts);
    opts.emit({ type: 'done', report });
    return report;
  } catch (err) {
    const error = toWireError(err);
    const last = lastForwarded as CoordinatorEvent | null;
    const already =
      last?.type === 'error' && last.error.name === error.name && last.error.message === error.message;
    if (!already) opts.emit({ type: 'error', error });
    throw err;
  } finally {
    off();
  }
}
