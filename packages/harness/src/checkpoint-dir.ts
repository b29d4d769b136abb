// A checkpoint directory (`peertrain train --checkpoint-dir DIR`, `--resume DIR`): the latest
// checkpoint's blob `checkpoint-<step>.bin` and its manifest `latest.json` (format: @peertrain/protocol
// checkpoint.ts). Each file is written atomically (a temporary file in DIR, fsync, rename, then the
// directory fsynced), the blob before the manifest that names it: a crash at any point leaves the
// previous checkpoint readable or the new one complete, never a manifest without its blob.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, decodeCheckpoint } from '@peertrain/protocol';
import type { Checkpoint, CheckpointManifest } from '@peertrain/protocol';

export const LATEST_MANIFEST = 'latest.json';

/** The blob file of the checkpoint after `step` steps. */
export function blobFileName(step: number): string {
  return `checkpoint-${String(step).padStart(8, '0')}.bin`;
}

/** Writes `data` to `path` atomically: temporary file beside it, fsync, rename. */
async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Makes the renames in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a checkpoint into `dir` (created if missing) as its latest; older blobs are removed after. */
export async function writeCheckpointDir(
  dir: string,
  manifest: CheckpointManifest,
  blob: Uint8Array,
): Promise<{ manifestPath: string; blobPath: string }> {
  await mkdir(dir, { recursive: true });
  const blobName = blobFileName(manifest.step);
  const blobPath = join(dir, blobName);
  const manifestPath = join(dir, LATEST_MANIFEST);
  await writeAtomic(blobPath, blob);
  await syncDir(dir);
  await writeAtomic(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  await syncDir(dir);
  // The new manifest is durable: earlier blobs (and temporaries of a crashed writer) can go.
  for (const name of await readdir(dir))
    if (name !== blobName && /^checkpoint-\d+\.bin(\.tmp-.*)?$|^latest\.json\.tmp-/.test(name))
      await rm(join(dir, name), { force: true });
  return { manifestPath, blobPath };
}

/** The latest checkpoint in `dir`, checked (digest, manifest, configuration); CheckpointError says what is wrong. */
export async function readCheckpointDir(dir: string): Promise<Checkpoint & { blob: Uint8Array }> {
  const manifestPath = join(dir, LATEST_MANIFEST);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (e) {
    throw new CheckpointError(
      `no checkpoint in ${dir}: cannot read ${LATEST_MANIFEST} (${(e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${manifestPath} is not JSON: ${(e as Error).message}`);
  }
  const step = (raw as { step?: unknown } | null)?.step;
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 1)
    throw new CheckpointError(`${manifestPath} names no step`);
  const blobPath = join(dir, blobFileName(step));
  let blob: Uint8Array;
  try {
    blob = new Uint8Array(await readFile(blobPath));
  } catch (e) {
    throw new CheckpointError(`the checkpoint's blob ${blobPath} is missing (${(e as Error).message})`);
  }
  return { ...decodeCheckpoint(raw, blob), blob };
}
