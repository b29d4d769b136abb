import { describe, expect, it } from 'vitest';
import { IdTakenError, TransportError } from '@peertrain/protocol';
import { claimId, CoordinatorIdTakenError } from './claimId.ts';

const taken = (): IdTakenError =>
  new IdTakenError('pt-r-coordinator', 'id "pt-r-coordinator" is already taken');

describe('claimId', () => {
  it('tries again while the id is taken, and resolves once it is free', async () => {
    let tries = 0;
    const waits: number[] = [];
    const retried: number[] = [];
    const got = await claimId(
      'pt-r-coordinator',
      () => (++tries < 3 ? Promise.reject(taken()) : Promise.resolve('session')),
      {
        signal: new AbortController().signal,
        delayMs: 7,
        wait: (ms) => (waits.push(ms), Promise.resolve()),
        onRetry: (n) => retried.push(n),
      },
    );
    expect(got).toBe('session');
    expect(tries).toBe(3);
    expect(waits).toEqual([7, 7]);
    expect(retried).toEqual([1, 2]);
  });

  it('gives up after `attempts` with CoordinatorIdTakenError naming the id', async () => {
    let tries = 0;
    const p = claimId('pt-r-coordinator', () => (tries++, Promise.reject(taken())), {
      signal: new AbortController().signal,
      attempts: 4,
      wait: () => Promise.resolve(),
    });
    await expect(p).rejects.toThrow(CoordinatorIdTakenError);
    await expect(p).rejects.toThrow(/"pt-r-coordinator" was still taken after 4 tries/);
    expect(tries).toBe(4);
  });

  it('fails at once on any other error, and on abort', async () => {
    let tries = 0;
    const other = claimId('x', () => (tries++, Promise.reject(new TransportError('no server'))), {
      signal: new AbortController().signal,
      wait: () => Promise.resolve(),
    });
    await expect(other).rejects.toThrow(TransportError);
    expect(tries).toBe(1);
    const ac = new AbortController();
    const aborted = claimId('x', () => (ac.abort(new Error('page closed')), Promise.reject(taken())), {
      signal: ac.signal,
      wait: () => Promise.resolve(),
    });
    await expect(aborted).rejects.toThrow('page closed');
  });
});
