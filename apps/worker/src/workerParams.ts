import {
  BACKENDS,
  COMPUTE_PLACES,
  ConfigError,
  DEFAULT_COMPUTE_PLACE,
  type ComputePlace,
  toWireError,
  validateRoom,
  type BackendName,
  type MemoryReport,
  type WireError,
} from '@peertrain/protocol';
import { formatBytes } from '@peertrain/ui';
import type { WorkerPhase, WorkerStatus } from '@peertrain/worker-runtime';

// Worker URL: /apps/worker/?room=ROOM[&backend=auto|webgpu|webgl|wasm|cpu][&compute=thread|page]

export type BackendChoice = 'auto' | BackendName;

export interface WorkerParams {
  /** Null when missing or invalid: the page then asks for it. */
  room: string | null;
  backend: BackendChoice;
  /** Where the engine computes (protocol's COMPUTE_PLACES). */
  compute: ComputePlace;
  /** Why the URL cannot be used as given (bad room or backend). */
  error: WireError | null;
}

function isBackendChoice(v: string): v is BackendChoice {
  return v === 'auto' || (BACKENDS as readonly string[]).includes(v);
}

export function parseWorkerParams(search: string): WorkerParams {
  const q = new URLSearchParams(search);
  const rawRoom = q.get('room');
  const rawBackend = q.get('backend');
  let room: string | null = null;
  let error: WireError | null = null;
  if (rawRoom !== null && rawRoom !== '') {
    try {
      room = validateRoom(rawRoom.trim().toLowerCase());
    } catch (err) {
      error = toWireError(err);
    }
  }
  let backend: BackendChoice = 'auto';
  if (rawBackend !== null && rawBackend !== '') {
    if (isBackendChoice(rawBackend)) {
      backend = rawBackend;
    } else {
      error ??= toWireError(
        new ConfigError(`unknown backend "${rawBackend}"`, [`use auto, ${BACKENDS.join(', ')}`]),
      );
      room = null;
    }
  }
  const rawCompute = q.get('compute');
  let compute = DEFAULT_COMPUTE_PLACE;
  if (rawCompute !== null && rawCompute !== '') {
    if ((COMPUTE_PLACES as readonly string[]).includes(rawCompute)) compute = rawCompute as ComputePlace;
    else {
      error ??= toWireError(
        new ConfigError(`unknown compute place "${rawCompute}"`, [`use ${COMPUTE_PLACES.join(' or ')}`]),
      );
      room = null;
    }
  }
  return { room, backend, compute, error };
}

/**
 * One line for the page header: what the worker is doing now. `retrying`: a join attempt failed
 * (its error is under "last error") and the next one is under way.
 */
export function phaseText(phase: WorkerPhase, retrying = false): string {
  switch (phase) {
    case 'probing':
      return 'Measuring compute backends…';
    case 'joining':
      return retrying
        ? 'Waiting for the coordinator (the dashboard tab), trying again…'
        : 'Joining the coordinator (the dashboard tab)…';
    case 'idle':
      return 'Ready, waiting for a run';
    case 'loading':
      return 'Loading data and linking to peers…';
    case 'training':
      return 'Training';
    case 'reference':
      return 'Training the single-worker reference…';
    case 'done':
      return 'Run finished';
    case 'error':
      return 'Stopped by an error';
    case 'left':
      return 'Left the room';
    default: {
      const _: never = phase;
      return _;
    }
  }
}

/**
 * What this worker holds, for a person: "worker", "worker + parameter server", or for a pipeline
 * stage "stage 2 of 4, replica 1, layers 3-5" (interleaved: "layers 1, 5-6"). Stage and replica are counted from 1 (ordinals a
 * volunteer reads); layers are the model's 0-based indices, inclusive, as `--partition` writes them.
 */
export function roleText(role: WorkerStatus['role'], stage: WorkerStatus['stage']): string {
  switch (role) {
    case null:
      return '–';
    case 'worker':
      return 'worker';
    case 'worker+server':
      return 'worker + parameter server';
    case 'stage': {
      if (stage === null) return 'pipeline stage';
      const ranges = stage.chunks ?? [stage];
      const text = ranges.map((r) => (r.end - 1 > r.first ? `${r.first}-${r.end - 1}` : `${r.first}`));
      const many = ranges.length > 1 || stage.end - 1 > stage.first;
      const layers = `${many ? 'layers' : 'layer'} ${text.join(', ')}`;
      return `stage ${stage.stage + 1} of ${stage.stages}, replica ${stage.replica + 1}, ${layers}`;
    }
    default: {
      const _: never = role;
      return _;
    }
  }
}

/**
 * The memory line: what the engine holds now ("1.2 MB in 14 tensors"), on GPU backends also on the
 * device, then the parameters held between steps and, for a pipeline stage, the most activation
 * bytes its last step held at once. The line follows every step, taken when the step is over: a
 * stage holds nothing then (its kernels and activations live inside a step), so without its peak
 * it read "0 B in 0 tensors" all run.
 */
export function memoryText(m: MemoryReport | null): string {
  if (m === null) return '–';
  return (
    `${formatBytes(m.numBytes)} in ${m.numTensors} tensors` +
    (m.numBytesInGPU !== undefined ? ` (GPU ${formatBytes(m.numBytesInGPU)})` : '') +
    (m.paramBytes !== undefined ? `, parameters ${formatBytes(m.paramBytes)}` : '') +
    (m.peakActivationBytes !== undefined ? `, activations at most ${formatBytes(m.peakActivationBytes)}` : '')
  );
}
