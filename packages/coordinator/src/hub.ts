import { toWireError } from '@peertrain/protocol';
import type { ToWorker } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import type { CoordinatorEvent, CoordinatorView } from './types.ts';

/**
 * What every part of the coordinator shares: the mesh, the clock, the event stream and the view's
 * change notification. Parts talk to the outside only through this.
 */
export interface Hub {
  readonly mesh: Mesh;
  now(): number;
  emit(e: CoordinatorEvent): void;
  log(message: string): void;
  /** Sends without waiting; a failure is logged, never thrown. */
  send(peerId: string, msg: ToWorker): void;
  /** The view changed: every subscriber gets the new one. */
  changed(): void;
  subscribe(listener: (v: CoordinatorView) => void): () => void;
  onEvent(listener: (e: CoordinatorEvent) => void): () => void;
  /** Drops every listener (dispose). */
  clear(): void;
}

export function createHub(mesh: Mesh, now: () => number, view: () => CoordinatorView): Hub {
  const viewListeners = new Set<(v: CoordinatorView) => void>();
  const eventListeners = new Set<(e: CoordinatorEvent) => void>();
  const emit = (e: CoordinatorEvent): void => {
    for (const l of eventListeners) l(e);
  };
  const log = (message: string): void => emit({ type: 'log', message });
  return {
    mesh,
    now,
    emit,
    log,
    send(peerId, msg) {
      mesh.sendControl(peerId, msg).catch((err: unknown) => {
        log(`send ${msg.type} to ${peerId} failed: ${toWireError(err).message}`);
      });
    },
    changed() {
      const v = view();
      for (const l of viewListeners) l(v);
    },
    subscribe(listener) {
      viewListeners.add(listener);
      return () => viewListeners.delete(listener);
    },
    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    clear() {
      viewListeners.clear();
      eventListeners.clear();
    },
  };
}
