import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointError, encodeCheckpoint, joinState, parseRunConfig } from '@peertrain/protocol';
import { LATEST_MANIFEST, blobFileName, readCheckpointDir, writeCheckpointDir } from './checkpoint-dir.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'peertrain-ckpt-'));
  dirs.push(d);
  return d;
}

const config = parseRunConfig({ workers: 2, steps: 12, optimizer: { kind: 'sgd', momentum: 0.9 } });
function checkpointAt(step: number): ReturnType<typeof encodeCheckpoint> {
  const params = Float32Array.from([step, -1, 0.25]);
  return encodeCheckpoint({
    config,
    step,
    state: joinState(params, [Float32Array.of(1, 2, 3), Float32Array.of(step)]),
  });
}

describe('checkpoint directory', () => {
  it('writes the blob and the manifest, reads the latest back, and keeps no temporaries or older blobs', async () => {
    const dir = join(await tempDir(), 'nested');
    const first = checkpointAt(3);
    await writeCheckpointDir(dir, first.manifest, first.blob);
    const second = checkpointAt(6);
    await writeCheckpointDir(dir, second.manifest, second.blob);
    expect((await readdir(dir)).sort()).toEqual([blobFileName(6), LATEST_MANIFEST]);
    const cp = await readCheckpointDir(dir);
    expect(cp.step).toBe(6);
    expect(cp.params).toEqual(Float32Array.from([6, -1, 0.25]));
    expect(cp.optimizer).toEqual([Float32Array.of(1, 2, 3), Float32Array.of(6)]);
    expect(cp.blob).toEqual(second.blob);
  });

  it('names a missing manifest, a missing blob and a corrupt blob with CheckpointError', async () => {
    const dir = await tempDir();
    await expect(readCheckpointDir(dir)).rejects.toThrow(CheckpointError);
    await expect(readCheckpointDir(dir)).rejects.toThrow(/no checkpoint in .*latest\.json/);
    const { manifest, blob } = checkpointAt(6);
    await writeCheckpointDir(dir, manifest, blob);
    const blobPath = join(dir, blobFileName(6));
    const bytes = await readFile(blobPath);
    bytes[0]! ^= 0xff;
    await writeFile(blobPath, bytes);
    await expect(readCheckpointDir(dir)).rejects.toThrow(/digest mismatch/);
    await rm(blobPath);
    await expect(readCheckpointDir(dir)).rejects.toThrow(/blob .* is missing/);
  });

  it('refuses a manifest that is not JSON', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, LATEST_MANIFEST), '{ not json');
    await expect(readCheckpointDir(dir)).rejects.toThrow(/is not JSON/);
  });
});
