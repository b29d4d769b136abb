import { describe, expect, it } from 'vitest';
import { encodeCheckpoint, joinState, parseRunConfig } from '@peertrain/protocol';
import type { Checkpoint } from '@peertrain/protocol';
import type { Coordinator, CoordinatorView, RunReport } from '@peertrain/coordinator';
import { memoryCheckpointStore } from './checkpointStore.ts';
import { createRunController } from './runController.ts';
import {
  DASHBOARD_CHECKPOINT_EVERY,
  checkpointFor,
  markedRun,
  resumeInterrupted,
  runMarkers,
  withCheckpoints,
  type MarkerStorage,
  type RunMarker,
} from './roomResume.ts';

function mapStorage(): MarkerStorage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
    key: (i) => [...map.keys()][i] ?? null,
    get length() {
      return map.size;
    },
  };
}

const config = parseRunConfig({
  workers: 2,
  steps: 30,
  checkpointEvery: 10,
  optimizer: { kind: 'sgd', momentum: 0 },
});
const marker = (room: string, since: string): RunMarker => ({ room, config, since, ranks: [] });

function checkpointEvent(step: number, createdAt: string, cfg = config) {
  const { manifest, blob } = encodeCheckpoint({
    config: cfg,
    step,
    runId: 1,
    createdAt,
    state: joinState(Float32Array.of(step, 1), [Float32Array.of(0)]),
  });
  return { type: 'checkpoint' as const, manifest, blobBase64: Buffer.from(blob).toString('base64') };
}

describe('run markers', () => {
  it('save, load, clear, and name the newest room', () => {
    const storage = mapStorage();
    const m = runMarkers(storage);
    m.save(marker('a', '2026-01-01T10:00:00.000Z'));
    m.save(marker('b', '2026-01-01T11:00:00.000Z'));
    storage.map.set('peertrain-run:junk', '{not json');
    expect(m.load('a')?.config.steps).toBe(30);
    expect(m.load('junk')).toBeNull();
    expect(m.newestRoom()).toBe('b');
    m.clear('b');
    expect(m.newestRoom()).toBe('a');
  });

  it('do nothing without storage, or when it throws', () => {
    const m = runMarkers(null);
    m.save(marker('a', 'x'));
    expect(m.load('a')).toBeNull();
    const broken = {
      ...mapStorage(),
      setItem: () => {
        throw new Error('quota');
      },
    };
    expect(() => runMarkers(broken).save(marker('a', 'x'))).not.toThrow();
  });
});

describe('withCheckpoints', () => {
  it('gives a checkpointable run with no period the dashboard one, and leaves the rest', () => {
    expect(withCheckpoints(parseRunConfig({})).checkpointEvery).toBe(DASHBOARD_CHECKPOINT_EVERY);
    expect(withCheckpoints(parseRunConfig({ checkpointEvery: 4 })).checkpointEvery).toBe(4);
    expect(withCheckpoints(parseRunConfig({ strategy: 'pipeline', workers: 2 })).checkpointEvery).toBe(0);
  });
});

describe('checkpointFor', () => {
  it('takes the room newest checkpoint taken since the run began and fitting it', async () => {
    const store = memoryCheckpointStore();
    const logs: string[] = [];
    const m = marker('r', '2026-01-01T10:00:00.000Z');
    expect(await checkpointFor(m, store, (l) => logs.push(l))).toBeNull();
    await store.save('r', checkpointEvent(10, '2026-01-01T09:00:00.000Z')); // an earlier run's
    expect(await checkpointFor(m, store, (l) => logs.push(l))).toBeNull();
    await store.save('r', checkpointEvent(20, '2026-01-01T10:01:00.000Z'));
    expect((await checkpointFor(m, store, (l) => logs.push(l)))?.step).toBe(20);
    const other = { ...m, config: { ...config, model: 'cnn' as const } };
    expect(await checkpointFor(other, store, (l) => logs.push(l))).toBeNull();
    expect(logs).toEqual([expect.stringMatching(/^checkpoint after step 20 not used: .*model/)]);
  });
});

/** A coordinator whose run() waits for `settle`; its view has the two peers at ranks 0 and 1. */
function fakeCoordinator() {
  const calls: Parameters<Coordinator['run']>[1][] = [];
  let settle: (r: RunReport | Error) => void = () => undefined;
  let listener: ((v: CoordinatorView) => void) | null = null;
  const view = {
    peers: [
      { peerId: 'w1', rank: 1 },
      { peerId: 'w0', rank: 0 },
      { peerId: 'idle', rank: null },
    ],
  } as unknown as CoordinatorView;
  const coordinator: Pick<Coordinator, 'run' | 'view' | 'subscribe'> = {
    view: () => view,
    subscribe: (l) => ((listener = l), () => (listener = null)),
    run: (_config, opts) => {
      calls.push(opts);
      listener?.(view);
      return new Promise((resolve, reject) => {
        settle = (r) => (r instanceof Error ? reject(r) : resolve(r));
      });
    },
  };
  return { coordinator, calls, settle: (r: RunReport | Error) => settle(r) };
}

describe('markedRun', () => {
  it('keeps the marker with the ranks while it runs and when the page goes away', async () => {
    const storage = mapStorage();
    const markers = runMarkers(storage);
    const fake = fakeCoordinator();
    const ac = new AbortController();
    const run = markedRun(fake.coordinator, config, { room: 'r', markers, signal: ac.signal, waitMs: 5 });
    await Promise.resolve();
    expect(markers.load('r')?.ranks).toEqual(['w0', 'w1']);
    ac.abort();
    fake.settle(new Error('aborted'));
    await expect(run).rejects.toThrow('aborted');
    expect(markers.load('r')).not.toBeNull();
  });

  it('resumes with the checkpoint and the ranks, and clears the marker once the run ends', async () => {
    const markers = runMarkers(mapStorage());
    const fake = fakeCoordinator();
    const m = { ...marker('r', '2026-01-01T10:00:00.000Z'), ranks: ['w0', 'w1'] };
    const checkpoint = { step: 20 } as Checkpoint;
    const signal = new AbortController().signal;
    const run = markedRun(fake.coordinator, config, {
      room: 'r',
      markers,
      signal,
      waitMs: 5,
      resume: { marker: m, checkpoint },
    });
    expect(fake.calls[0]).toMatchObject({ resume: checkpoint, ranks: ['w0', 'w1'], waitMs: 5 });
    expect(markers.load('r')?.since).toBe(m.since);
    fake.settle({} as RunReport);
    await run;
    expect(markers.load('r')).toBeNull();
    // A run that fails (not the page going away) clears it too.
    const failed = markedRun(fake.coordinator, config, { room: 'r', markers, signal, waitMs: 5 });
    fake.settle(new Error('PeerLostError'));
    await expect(failed).rejects.toThrow();
    expect(markers.load('r')).toBeNull();
  });

  it('a page with the room marker resumes its run and tells the form its configuration', () => {
    const markers = runMarkers(mapStorage());
    markers.save(marker('r', '2026-01-01T10:00:00.000Z'));
    const runs = createRunController();
    const deps = { coordinator: fakeCoordinator().coordinator, runs, markers, room: 'r', emit: () => {} };
    const resumed = resumeInterrupted({ ...deps, checkpoints: memoryCheckpointStore() });
    expect(resumed?.config).toEqual(config);
    expect(runs.state().busy).toBe(true);
    runs.dispose();
    expect(resumeInterrupted({ ...deps, room: 'other', checkpoints: memoryCheckpointStore() })).toBeNull();
  });
});
