import { describe, expect, it } from 'vitest';
import { PeerLostError, PhaseTimeoutError, TransportError } from '@peertrain/protocol';
import type { Mesh } from '@peertrain/transport';
import { dialCoordinator } from './links.ts';

/** A mesh whose dials fail with `errors` in turn, then open. */
function meshFailing(errors: Error[]): { mesh: Mesh; dials: () => number } {
  let dials = 0;
  const mesh = {
    connect: () => {
      const err = errors[dials++];
      return err ? Promise.reject(err) : Promise.resolve();
    },
  } as unknown as Mesh;
  return { mesh, dials: () => dials };
}

describe('dialCoordinator', () => {
  it('dials again after "no such peer" and after a stalled handshake (a reloading dashboard)', async () => {
    const { mesh, dials } = meshFailing([
      new PeerLostError('pt-r-coordinator', 'peer unavailable'),
      new PhaseTimeoutError('link open (signaling have-local-offer)', 45_000),
    ]);
    await dialCoordinator(mesh, 'pt-r-coordinator', new AbortController().signal, 30_000);
    expect(dials()).toBe(3);
  });

  it('dials again when a dial goes unanswered (its offer went to a page going away)', async () => {
    // The first dial never settles until its signal aborts, as a PeerJS offer nobody answers; the
    // second opens. The join timeout (60 s) is far past the test's own: only the short first try
    // (50 ms here) brings the second dial.
    const signals: AbortSignal[] = [];
    const mesh = {
      connect: (_: string, opts: { signal: AbortSignal }) => {
        signals.push(opts.signal);
        if (signals.length > 1) return Promise.resolve();
        return new Promise<void>((_, reject) =>
          opts.signal.addEventListener('abort', () => reject(opts.signal.reason as Error), { once: true }),
        );
      },
    } as unknown as Mesh;
    await dialCoordinator(mesh, 'pt-r-coordinator', new AbortController().signal, 60_000, 50);
    expect(signals).toHaveLength(2);
    expect(signals[0]!.aborted).toBe(true);
  }, 5_000);

  it('fails at once when its own mesh is closed', async () => {
    const { mesh, dials } = meshFailing([new TransportError('mesh w closed')]);
    await expect(
      dialCoordinator(mesh, 'pt-r-coordinator', new AbortController().signal, 30_000),
    ).rejects.toBeInstanceOf(TransportError);
    expect(dials()).toBe(1);
  });

  it('past its timeout fails with the last error', async () => {
    const { mesh } = meshFailing(
      Array.from({ length: 1000 }, () => new PeerLostError('c', 'peer unavailable')),
    );
    await expect(dialCoordinator(mesh, 'c', new AbortController().signal, 50)).rejects.toBeInstanceOf(
      PeerLostError,
    );
  });
});
