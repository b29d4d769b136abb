import { describe, expect, it } from 'vitest';
import { checkpointFromBase64, encodeCheckpoint, joinState, parseRunConfig } from '@peertrain/protocol';
import { defaultCheckpointStore, memoryCheckpointStore } from './checkpointStore.ts';
import type { CheckpointEvent } from './checkpointStore.ts';

const config = parseRunConfig({ workers: 2, steps: 12, optimizer: { kind: 'sgd', momentum: 0 } });
function event(runId: number, step: number, createdAt?: string): CheckpointEvent {
  const { manifest, blob } = encodeCheckpoint({
    config,
    step,
    runId,
    ...(createdAt === undefined ? {} : { createdAt }),
    state: joinState(Float32Array.of(step, runId), [Float32Array.of(step)]),
  });
  return { type: 'checkpoint', manifest, blobBase64: Buffer.from(blob).toString('base64') };
}

describe('checkpoint store', () => {
  it('keeps the latest checkpoint per room and run, and finds the newest run of a room', async () => {
    const store = memoryCheckpointStore();
    expect(await store.latest('a')).toBeNull();
    await store.save('a', event(1, 3));
    await store.save('a', event(1, 6));
    await store.save('a', event(2, 3));
    await store.save('b', event(5, 9));
    const latest = (await store.latest('a'))!;
    expect(latest).toMatchObject({ key: 'a/2', runId: 2, step: 3 });
    const cp = checkpointFromBase64(latest.manifest, latest.blobBase64);
    expect(Array.from(cp.params)).toEqual([3, 2]);
    expect((await store.latest('b'))!.step).toBe(9);
  });

  it('takes the later createdAt over the higher run id (a reloaded page counts runs from 1 again)', async () => {
    const store = memoryCheckpointStore();
    await store.save('a', event(3, 10, '2026-01-01T10:00:00.000Z'));
    await store.save('a', event(1, 20, '2026-01-01T10:05:00.000Z'));
    expect((await store.latest('a'))!).toMatchObject({ runId: 1, step: 20 });
  });

  it('is memory where there is no IndexedDB (Node)', () => {
    expect(defaultCheckpointStore().kind).toBe('memory');
  });
});
