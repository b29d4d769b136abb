import { describe, expect, it } from 'vitest';
import { checkpointFromBase64, encodeCheckpoint, joinState, parseRunConfig } from '@peertrain/protocol';
import { defaultCheckpointStore, memoryCheckpointStore } from './checkpointStore.ts';
import type { CheckpointEvent } from './checkpointStore.ts';

const config = parseRunConfig({ workers: 2, steps: 12, optimizer: { kind: 'sgd', momentum: 0 } });
function event(runId: number, step: number): CheckpointEvent {
  const { manifest, blob } = encodeCheckpoint({
    config,
    step,
    runId,
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

  it('is memory where there is no IndexedDB (Node)', () => {
    expect(defaultCheckpointStore().kind).toBe('memory');
  });
});
