import { z } from 'zod';
import { parseRunConfig } from './config.ts';
import type { OptimizerConfig, RunConfig } from './config.ts';
import { CheckpointError } from './errors.ts';
import { sha256Hex } from './sha256.ts';

// A checkpoint of a data-parallel run: the state after `step` steps, from which step `step` (the
// (step+1)-th) runs next. Two parts: a manifest (JSON: what it is, the run's configuration, the
// blob's size and SHA-256) and a blob (little-endian float32: the parameters [P], then the
// optimizer's state buffers as Optimizer.state() gives them: sgd [velocity P, steps 1] or [steps 1]
// without momentum; adam [m P, v P, steps 1]). The data cursor is the step: every batch is a pure
// function of (seed, shard, step) (engine batching), and nothing else in a data-parallel step draws
// random numbers, so the RNG state is the seed, recorded with the configuration.

export const CHECKPOINT_FORMAT = 'peertrain-checkpoint';
export const CHECKPOINT_VERSION = 1;

export const CheckpointManifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  /** Steps applied: the resumed run continues at this step. */
  step: z.number().int().min(1),
  /** The run's configuration (parseRunConfig's output). */
  config: z.record(z.string(), z.unknown()),
  paramCount: z.number().int().min(1),
  /** Lengths of the optimizer's state buffers, in blob order after the parameters. */
  optimizerSlots: z.array(z.number().int().min(0)),
  /** What decides the random draws of the steps to come (documentation: all of it is in `config`). */
  rng: z.object({ seed: z.number().int(), data: z.string() }),
  blob: z.object({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  room: z.string().optional(),
  runId: z.number().int().min(0).optional(),
  /** ISO time the coordinator took it. */
  createdAt: z.string().optional(),
});
export type CheckpointManifest = z.infer<typeof CheckpointManifestSchema>;

/** A checkpoint decoded and checked: the state a resumed run starts from. */
export interface Checkpoint {
  manifest: CheckpointManifest;
  config: RunConfig;
  step: number;
  /** [P] */
  params: Float32Array;
  /** Optimizer.state() buffers. */
  optimizer: Float32Array[];
}

/** Settings a resumed run may change: they do not change what a step computes. */
const MAY_DIFFER: ReadonlySet<string> = new Set([
  'steps',
  'evalEvery',
  'reference',
  'backend',
  'checkpointEvery',
  'targetAccuracy',
  'heartbeatTimeoutMs',
]);

/** Lengths of Optimizer.state()'s buffers for `paramCount` parameters (optim's layout, see the top). */
export function optimizerSlotLengths(opt: OptimizerConfig, paramCount: number): number[] {
  if (opt.kind === 'adam') return [paramCount, paramCount, 1];
  return opt.momentum > 0 ? [paramCount, 1] : [1];
}

/** Elements of the flat state tensor (params + optimizer) a worker sends for `paramCount` parameters. */
export function stateLength(opt: OptimizerConfig, paramCount: number): number {
  return optimizerSlotLengths(opt, paramCount).reduce((a, b) => a + b, paramCount);
}

/** The parameter count whose flat state tensor has `length` elements; CheckpointError when none does. */
export function paramCountOfState(opt: OptimizerConfig, length: number): number {
  // P-sized buffers (the optimizer's, less its one-element steps buffer, plus the parameters).
  const perParam = optimizerSlotLengths(opt, 1).length;
  const p = (length - 1) / perParam;
  if (!Number.isInteger(p) || p < 1 || stateLength(opt, p) !== length)
    throw new CheckpointError(`a state of ${length} floats does not fit optimizer ${opt.kind}`);
  return p;
}

/** Splits a flat state [P + slots] into the parameters and the optimizer's buffers (copies). */
export function splitState(
  opt: OptimizerConfig,
  flat: Float32Array,
): { params: Float32Array; optimizer: Float32Array[] } {
  const p = paramCountOfState(opt, flat.length);
  let at = p;
  const optimizer = optimizerSlotLengths(opt, p).map((n) => flat.slice(at, (at += n)));
  return { params: flat.slice(0, p), optimizer };
}

/** Joins parameters and optimizer buffers into one flat state (the blob's layout). */
export function joinState(params: Float32Array, optimizer: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(optimizer.reduce((a, b) => a + b.length, params.length));
  out.set(params);
  let at = params.length;
  for (const b of optimizer) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** The flat state's bytes, little-endian whatever the host. */
function toLittleEndian(flat: Float32Array): Uint8Array {
  const bytes = new Uint8Array(flat.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < flat.length; i++) view.setFloat32(4 * i, flat[i]!, true);
  return bytes;
}

function fromLittleEndian(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** The manifest and blob of the state after `step` steps of the run `config`. */
export function encodeCheckpoint(c: {
  config: RunConfig;
  step: number;
  state: Float32Array;
  room?: string;
  runId?: number;
  createdAt?: string;
}): { manifest: CheckpointManifest; blob: Uint8Array } {
  const paramCount = paramCountOfState(c.config.optimizer, c.state.length);
  const blob = toLittleEndian(c.state);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: c.step,
    config: { ...c.config },
    paramCount,
    optimizerSlots: optimizerSlotLengths(c.config.optimizer, paramCount),
    rng: { seed: c.config.seed, data: 'batches are a pure function of (seed, shard, step)' },
    blob: { bytes: blob.byteLength, sha256: sha256Hex(blob) },
    ...(c.room !== undefined ? { room: c.room } : {}),
    ...(c.runId !== undefined ? { runId: c.runId } : {}),
    ...(c.createdAt !== undefined ? { createdAt: c.createdAt } : {}),
  };
  return { manifest, blob };
}

/** unknown manifest + blob in, a checked Checkpoint out; CheckpointError says what is wrong. */
export function decodeCheckpoint(rawManifest: unknown, blob: Uint8Array): Checkpoint {
  const r = CheckpointManifestSchema.safeParse(rawManifest);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid';
    throw new CheckpointError(`not a ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} manifest (${where})`);
  }
  const manifest = r.data;
  let config: RunConfig;
  try {
    config = parseRunConfig(manifest.config);
  } catch (e) {
    throw new CheckpointError(`the manifest's run configuration is invalid: ${(e as Error).message}`);
  }
  if (blob.byteLength !== manifest.blob.bytes)
    throw new CheckpointError(
      `the blob has ${blob.byteLength} bytes, the manifest says ${manifest.blob.bytes}`,
    );
  const digest = sha256Hex(blob);
  if (digest !== manifest.blob.sha256)
    throw new CheckpointError(
      `digest mismatch: the blob's SHA-256 is ${digest}, the manifest says ${manifest.blob.sha256}`,
    );
  const slots = optimizerSlotLengths(config.optimizer, manifest.paramCount);
  if (JSON.stringify(slots) !== JSON.stringify(manifest.optimizerSlots) || blob.byteLength % 4 !== 0)
    throw new CheckpointError(
      `the optimizer's buffers [${manifest.optimizerSlots.join(', ')}] do not fit ${config.optimizer.kind}`,
    );
  const { params, optimizer } = splitState(config.optimizer, fromLittleEndian(blob));
  if (params.length !== manifest.paramCount)
    throw new CheckpointError(
      `the blob holds ${params.length} parameters, the manifest says ${manifest.paramCount}`,
    );
  return { manifest, config, step: manifest.step, params, optimizer };
}

/**
 * Refuses (CheckpointError naming every difference) to resume `config` from a checkpoint of another
 * run: another model, dataset, world size, batch, seed, optimizer, method... Only the settings in
 * MAY_DIFFER may change, and the run must have steps left.
 */
export function checkResumable(cp: Pick<Checkpoint, 'config' | 'step'>, config: RunConfig): void {
  const diffs: string[] = [];
  const keys = new Set([...Object.keys(cp.config), ...Object.keys(config)]);
  for (const k of [...keys].sort()) {
    if (MAY_DIFFER.has(k)) continue;
    const was = JSON.stringify((cp.config as Record<string, unknown>)[k]);
    const now = JSON.stringify((config as Record<string, unknown>)[k]);
    if (was !== now) diffs.push(`${k}: checkpoint ${was ?? 'unset'}, run ${now ?? 'unset'}`);
  }
  if (diffs.length > 0)
    throw new CheckpointError(`the checkpoint is of another run configuration (${diffs.join('; ')})`);
  if (config.steps <= cp.step)
    throw new CheckpointError(
      `the checkpoint is at step ${cp.step}: a run of ${config.steps} steps has none left`,
    );
}

/**
 * Mesh key of the flat state (float32 [P + slots]) the holder sends the coordinator after `steps`
 * steps, ahead of that step's stepDone on the same ordered link; and of the state the coordinator
 * sends each rank of a resumed run. Tags no collective, pipeline, probe or final-params key uses.
 */
export function checkpointKey(
  runId: number,
  steps: number,
): { runId: number; step: number; microBatch: null; tag: number } {
  return { runId, step: steps, microBatch: null, tag: 0x7ffd_0000 };
}
export function resumeKey(runId: number): { runId: number; step: number; microBatch: null; tag: number } {
  return { runId, step: 0, microBatch: null, tag: 0x7ffc_0000 };
}

/** Whether a checkpoint is due once `done` steps are applied (every `every` steps; 0: never). */
export function checkpointDue(every: number, done: number): boolean {
  return every > 0 && done > 0 && done % every === 0;
}

/** A checkpoint event's payload decoded and checked (atob: browsers and Node alike). */
export function checkpointFromBase64(rawManifest: unknown, blobBase64: string): Checkpoint {
  let bin: string;
  try {
    bin = atob(blobBase64);
  } catch {
    throw new CheckpointError('the checkpoint blob is not base64');
  }
  const blob = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) blob[i] = bin.charCodeAt(i);
  return decodeCheckpoint(rawManifest, blob);
}
