import { afterEach, describe, expect, it } from 'vitest';
import { buildModel, modelPreset, paramDiff } from '@peertrain/engine';
import type { RunConfigInput } from '@peertrain/protocol';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { joinState } from '@peertrain/protocol';
import { StateDigestError, fnv1a, recvState, sendState, unpackState } from './join-state.ts';
import { joinDuringRun, memoryCluster } from './test-cluster.ts';

// A peer joining an elastic run in progress: admitted at a step boundary, streamed the state by
// the epoch's first member, it computes its share of the same global batch, so the run still ends
// with the undisturbed run's parameters.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// 2 workers at batch 8, SGD with momentum (the joiner must get the velocity too).
const base: RunConfigInput = {
  ...{ dataset: 'synthetic', model: 'mlp', bucketElems: 10_000, elastic: true },
  ...{ workers: 2, steps: 60, batch: 8, lr: 0.05, seed: 5, evalEvery: 0 },
};
const layout = buildModel(modelPreset('mlp')).params;

describe('joining an elastic run', () => {
  it('a worker arriving at step 20 of 60 contributes from step 20 on; the run equals the undisturbed one', async () => {
    const calm = memoryCluster(2, 'ej-calm', cleanups);
    await calm.coord.run(base, { waitMs: 30_000 });
    const calmParams = calm.coord.trainedModel()!.params.slice();

    const { coord, net } = memoryCluster(2, 'ej-join', cleanups);
    // The barrier holds at step 20 until the newcomer is in the room: it joins at boundary 20.
    const joiner = joinDuringRun(coord, net, 'ej-join', 'late', 20, cleanups);
    const report = await coord.run(base, { waitMs: 30_000 });
    expect(report.loss.map((l) => l.step)).toEqual([...Array(60).keys()]);
    const late = coord.view().peers.find((p) => p.peerId.endsWith('late'))!;
    expect(report.membershipChanges?.map(({ step, cause, peerId }) => ({ step, cause, peerId }))).toEqual([
      { step: 20, cause: 'joined', peerId: late.peerId },
    ]);
    expect(late).toMatchObject({ rank: 2, joinedAtStep: 20, lastStep: 59 });
    // Each member reported its links after the epoch re-formed the ring: the joiner too (its ready
    // came before it had any), and the others now link to two peers, not one.
    expect(report.workers.map((w) => w.links)).toEqual([{ memory: 2 }, { memory: 2 }, { memory: 2 }]);
    expect(joiner()!.status().step).toBe(60); // it ran steps 20..59 itself
    const diff = paramDiff(coord.trainedModel()!.params, calmParams, layout);
    console.log(`elastic join at step 20: ${JSON.stringify(diff)}`);
    expect(diff.maxRelDiff).toBeLessThanOrEqual(1e-5);
  }, 300_000);
});

describe('streaming the state to a joiner', () => {
  it('packs and unpacks parameters and optimizer state', () => {
    const params = Float32Array.of(1, 2, 3);
    const opt = [Float32Array.of(4, 5, 6), Float32Array.of(7)];
    const into = new Float32Array(3);
    const back = unpackState(joinState(params, opt), into, [new Float32Array(3), new Float32Array(1)]);
    expect(into).toEqual(params);
    expect(back).toEqual(opt);
    expect(() => unpackState(joinState(params, opt), into, [new Float32Array(3)])).toThrow(StateDigestError);
  });

  it('sends the state in chunks checked by a digest; a corrupted chunk is a StateDigestError', async () => {
    const net = createMemoryNetwork();
    const a = createMesh(memoryTransport(net, 'a', { maxMessageSize: 16 * 1024 }));
    const b = createMesh(memoryTransport(net, 'b', { maxMessageSize: 16 * 1024 }));
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await a.connect('b');
    const state = Float32Array.from({ length: 40_000 }, (_, i) => Math.sin(i)); // 3 chunks
    const signal = new AbortController().signal;
    const key = { runId: 3, step: 20 };
    const sent = sendState(a, 'b', key, state, { signal });
    expect(await recvState(b, 'a', key, { signal })).toEqual(state);
    await sent;
    // The same stream with one float changed on the way (a flaky or hostile sender).
    const send = a.sendTensor.bind(a);
    a.sendTensor = (to, t, o) =>
      send(
        to,
        t.microBatch === 1 ? { ...t, data: Uint8Array.from(t.data, (x, i) => (i === 5 ? x ^ 1 : x)) } : t,
        o,
      );
    const bad = sendState(a, 'b', { ...key, step: 21 }, state, { signal });
    await expect(recvState(b, 'a', { ...key, step: 21 }, { signal })).rejects.toThrow(StateDigestError);
    await bad;
    expect(fnv1a(new Uint8Array(0))).toBe(0x811c9dc5);
  });
});
