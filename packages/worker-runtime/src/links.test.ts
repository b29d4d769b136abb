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
