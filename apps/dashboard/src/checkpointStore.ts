import type { CheckpointManifest, CoordinatorEvent } from '@peertrain/protocol';

// The dashboard's checkpoints: the coordinator's `checkpoint` events kept in IndexedDB, one record
// per room and run (`ROOM/RUN`, the latest checkpoint replaces the one before), so a run can be
// resumed from the browser after the page is gone. Node tests and browsers without IndexedDB get
// the memory store.

export type CheckpointEvent = Extract<CoordinatorEvent, { type: 'checkpoint' }>;

export interface StoredCheckpoint {
  /** `ROOM/RUN` */
  key: string;
  room: string;
  runId: number;
  step: number;
  manifest: CheckpointManifest;
  /** The blob as base64, as the event carries it (checkpointFromBase64 decodes and checks it). */
  blobBase64: string;
}

export interface CheckpointStore {
  readonly kind: 'indexeddb' | 'memory';
  /** Keeps `event` as the latest checkpoint of its room and run. */
  save(room: string, event: CheckpointEvent): Promise<void>;
  /** The latest checkpoint of `room` (of its newest run holding one), or null. */
  latest(room: string): Promise<StoredCheckpoint | null>;
}

const DB = 'peertrain-checkpoints';
const STORE = 'checkpoints';

export function checkpointRecord(room: string, event: CheckpointEvent): StoredCheckpoint {
  const runId = event.manifest.runId ?? 0;
  return {
    key: `${room}/${runId}`,
    room,
    runId,
    step: event.manifest.step,
    manifest: event.manifest,
    blobBase64: event.blobBase64,
  };
}

/**
 * The newest record among `all` of `room`: the later `createdAt` where both have one (a reloaded
 * page counts its runs from 1 again, so a resumed run's id may be below the interrupted one's),
 * else the newer run, then the later step.
 */
function newest(all: readonly StoredCheckpoint[], room: string): StoredCheckpoint | null {
  const newer = (c: StoredCheckpoint, best: StoredCheckpoint): boolean => {
    const [a, b] = [c.manifest.createdAt, best.manifest.createdAt];
    if (a !== undefined && b !== undefined && a !== b) return a > b;
    return c.runId > best.runId || (c.runId === best.runId && c.step > best.step);
  };
  let best: StoredCheckpoint | null = null;
  for (const c of all) if (c.room === room && (!best || newer(c, best))) best = c;
  return best;
}

export function memoryCheckpointStore(): CheckpointStore {
  const records = new Map<string, StoredCheckpoint>();
  return {
    kind: 'memory',
    save(room, event) {
      const r = checkpointRecord(room, event);
      records.set(r.key, r);
      return Promise.resolve();
    },
    latest: (room) => Promise.resolve(newest([...records.values()], room)),
  };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

export function indexedDbCheckpointStore(factory: IDBFactory): CheckpointStore {
  let db: Promise<IDBDatabase> | undefined;
  const store = async (mode: IDBTransactionMode): Promise<IDBObjectStore> => {
    if (!db) {
      const req = factory.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
      db = request(req);
      db.catch(() => (db = undefined)); // a later call tries again
    }
    return (await db).transaction(STORE, mode).objectStore(STORE);
  };
  return {
    kind: 'indexeddb',
    async save(room, event) {
      await request((await store('readwrite')).put(checkpointRecord(room, event)));
    },
    async latest(room) {
      const all = await request((await store('readonly')).getAll());
      return newest(all as StoredCheckpoint[], room);
    },
  };
}

/** IndexedDB where the page has it, memory otherwise. */
export function defaultCheckpointStore(): CheckpointStore {
  return typeof indexedDB === 'undefined' ? memoryCheckpointStore() : indexedDbCheckpointStore(indexedDB);
}
