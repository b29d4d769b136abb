import { PeerLostError } from '@peertrain/protocol';
import { AbortError, abortReason } from '@peertrain/base';
import type { Mesh, Unsubscribe } from '@peertrain/transport';

/**
 * The lifetime of one collective operation. Its signal is passed to every send and receive the
 * operation makes; the first failure (the caller's abort, a lost peer, a bad message, a failed send)
 * aborts it with that error, so every other pending receive of the operation is withdrawn at once and
 * the operation rejects with the first cause, not with a cascade of secondary errors.
 */
export class OpScope {
  readonly #controller = new AbortController();
  readonly #cleanups: Unsubscribe[] = [];
  #failed = false;
  #error: Error = new AbortError('not failed');

  constructor(parent?: AbortSignal) {
    if (parent === undefined) return;
    if (parent.aborted) {
      this.fail(abortReason(parent));
      return;
    }
    const onAbort = (): void => this.fail(abortReason(parent));
    parent.addEventListener('abort', onAbort, { once: true });
    this.#cleanups.push(() => parent.removeEventListener('abort', onAbort));
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Records the first failure and aborts everything under this scope; later calls are ignored. */
  fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = err instanceof Error ? err : new Error(String(err));
    this.#controller.abort(err);
  }

  throwIfFailed(): void {
    if (this.#failed) throw this.#error;
  }

  /** Fails the scope with PeerLostError as soon as the mesh reports any of `peerIds` closed or lost. */
  watchPeers(mesh: Mesh, peerIds: readonly string[]): void {
    const watched = new Set(peerIds);
    watched.delete(mesh.localId);
    if (watched.size === 0) return;
    this.#cleanups.push(
      mesh.onPeer((peerId, event) => {
        if (event === 'close' && watched.has(peerId)) this.fail(new PeerLostError(peerId));
      }),
      mesh.onError((from, err) => {
        if (err instanceof PeerLostError && watched.has(from)) this.fail(err);
      }),
    );
  }

  /**
   * Opens the links to `peerIds` that are not open yet (a peer can only receive from a peer it has a
   * link to, so each side opens the links it will use; both sides dialling is fine: the Mesh reuses).
   */
  async connect(mesh: Mesh, peerIds: readonly string[]): Promise<void> {
    const missing = [...new Set(peerIds)].filter((p) => p !== mesh.localId && !mesh.isConnected(p));
    if (missing.length === 0) return;
    await this.race(Promise.all(missing.map((p) => mesh.connect(p, { signal: this.signal }))));
  }

  /** Resolves with `promise`, or rejects with the scope's error as soon as the scope fails. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.#failed) {
      promise.catch(() => undefined);
      return Promise.reject(this.#error);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(this.#error);
      this.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (v) => {
          this.signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          this.signal.removeEventListener('abort', onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Removes every listener the scope added (to the caller's signal and the mesh). */
  dispose(): void {
    for (const off of this.#cleanups.splice(0)) off();
  }
}
