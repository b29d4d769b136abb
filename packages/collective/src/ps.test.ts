import { ConfigError, PeerLostError } from '@peertrain/protocol';
import { AbortError, mulberry32 } from '@peertrain/base';
import { describe, expect, it } from 'vitest';
import { createParameterServer, evenShards, psWorkerStep, validateShards } from './ps.ts';
import type { ParameterServer, PsShard } from './ps.ts';
import { useTestHubs } from './testMesh.ts';

const newHub = useTestHubs();

const LR = 0.1;
/** Plain SGD, in place: params [k] -= LR * meanGrad [k]. */
const sgd = (params: Float32Array, meanGrad: Float32Array): void => {
  for (let i = 0; i < params.length; i++) params[i] = params[i]! - LR * meanGrad[i]!;
};

/** A deterministic "gradient" of worker `rank` at `params` ([P] -> [P]), different per rank and step. */
function gradient(params: Float32Array, rank: number, step: number): Float32Array {
  const rnd = mulberry32(1000 * step + rank);
  return params.map((p) => p * (rank + 1) * 0.5 + (rnd() * 2 - 1));
}

/** The reference: one worker doing SGD on the mean of the N gradients, summed in rank order. */
function referenceSteps(initial: Float32Array, n: number, steps: number): Float32Array {
  const params = initial.slice();
  for (let step = 0; step < steps; step++) {
    const grads = Array.from({ length: n }, (_, r) => gradient(params, r, step));
    const mean = new Float32Array(params.length);
    for (const g of grads) for (let i = 0; i < mean.length; i++) mean[i] = mean[i]! + g[i]!;
    for (let i = 0; i < mean.length; i++) mean[i] = mean[i]! / n;
    sgd(params, mean);
  }
  return params;
}

const P = 37;
const STEPS = 3;
const initial = Float32Array.from({ length: P }, (_, i) => Math.sin(i));

/**
 * Runs STEPS synchronous steps on `n` workers. `ranges` undefined: worker 0 is the only server;
 * otherwise every shard's server runs a ParameterServer and the rest are pure workers.
 */
async function train(
  n: number,
  ranges?: readonly PsShard[],
  jitterMs = 0,
): Promise<{ params: Float32Array[]; servers: Map<string, ParameterServer>; workerBytes: number[] }> {
  const h = newHub({ jitterMs, random: mulberry32(9) });
  const workers = Array.from({ length: n }, (_, i) => `w${i}`);
  const meshes = workers.map((id) => h.mesh(id));
  const serverIds = new Set(ranges?.map((r) => r.serverId) ?? ['w0']);
  const servers = new Map<string, ParameterServer>();
  for (const [r, id] of workers.entries()) {
    if (!serverIds.has(id)) continue;
    const opts = { workers, params: initial.slice(), apply: sgd, runId: 4 };
    servers.set(id, createParameterServer(meshes[r]!, ranges === undefined ? opts : { ...opts, ranges }));
  }
  const workerBytes = workers.map(() => 0);
  const params = await Promise.all(
    workers.map(async (id, rank) => {
      let current: Float32Array = initial.slice();
      const traffic = { bytesSent: 0, bytesReceived: 0 };
      for (let step = 0; step < STEPS; step++) {
        const grad = gradient(current, rank, step);
        const server = servers.get(id);
        current = server
          ? (await server.serveStep(step, grad)).slice()
          : await psWorkerStep(meshes[rank]!, ranges ?? 'w0', grad, { runId: 4, step, traffic });
      }
      workerBytes[rank] = traffic.bytesSent;
      return current;
    }),
  );
  for (const m of meshes) {
    expect(m.pendingReceivers()).toBe(0);
    expect(m.bufferedMessages()).toBe(0);
  }
  return { params, servers, workerBytes };
}

describe('synchronous parameter server', () => {
  for (let n = 1; n <= 4; n++) {
    it(`N=${n}: every step equals local SGD on the mean gradient, bit for bit`, async () => {
      const { params, servers, workerBytes } = await train(n, undefined, 2);
      const expected = referenceSteps(initial, n, STEPS);
      for (const p of params) expect(p).toEqual(expected);
      const stats = servers.get('w0')!.stats();
      expect(stats.steps).toBe(STEPS);
      // The server receives N-1 gradients and sends N-1 parameter vectors a step.
      expect(stats.bytesReceived).toBe((n - 1) * P * 4 * STEPS);
      expect(stats.bytesSent).toBe((n - 1) * P * 4 * STEPS);
      for (const b of workerBytes.slice(1)) expect(b).toBe(P * 4 * STEPS);
    });
  }

  it('sharded by key range over several servers gives the same parameters', async () => {
    const ranges: PsShard[] = [
      { serverId: 'w1', start: 0, end: 10 },
      { serverId: 'w3', start: 10, end: 11 },
      { serverId: 'w1', start: 11, end: 30 },
      { serverId: 'w0', start: 30, end: P },
    ];
    const { params, servers } = await train(4, ranges, 3);
    const expected = referenceSteps(initial, 4, STEPS);
    for (const p of params) expect(p).toEqual(expected);
    // w1 serves 29 values: receives 3 workers' gradients, sends to 3 workers; and is a worker of the
    // 8 values it does not serve.
    expect(servers.get('w1')!.stats().bytesReceived).toBe((3 * 29 + 8) * 4 * STEPS);
  });

  it('evenShards cuts [0, size) into K sorted ranges, the first size % K one longer', () => {
    const r = evenShards(['a', 'b', 'c'], 11);
    expect(r).toEqual([
      { serverId: 'a', start: 0, end: 4 },
      { serverId: 'b', start: 4, end: 8 },
      { serverId: 'c', start: 8, end: 11 },
    ]);
    expect(validateShards(r, 11)).toEqual(r);
  });

  it('refuses inconsistent shard layouts with ConfigError listing the problems', () => {
    expect(() =>
      validateShards(
        [
          { serverId: 'a', start: 0, end: 5 },
          { serverId: 'x', start: 6, end: 6 },
        ],
        10,
        ['a', 'b'],
      ),
    ).toThrow(ConfigError);
    let caught: unknown;
    try {
      validateShards([{ serverId: 'a', start: 1, end: 9 }], 10);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues).toHaveLength(2); // starts at 1, ends at 9
    const h = newHub();
    const m = h.mesh('w0');
    expect(() =>
      createParameterServer(m, { workers: ['w1'], params: initial, apply: sgd, runId: 0 }),
    ).toThrow(ConfigError);
  });

  it('rejects with PeerLostError when a worker is lost, and on abort, leaving no receivers', async () => {
    const h = newHub();
    const workers = ['w0', 'w1', 'w2'];
    const [m0, m1] = workers.map((id) => h.mesh(id));
    const server = createParameterServer(m0!, { workers, params: initial.slice(), apply: sgd, runId: 0 });
    const served = server.serveStep(0, new Float32Array(P));
    const pulled = psWorkerStep(m1!, 'w0', new Float32Array(P), { runId: 0, step: 0 });
    await new Promise((r) => setTimeout(r, 5));
    h.kill('w2'); // never pushed its gradient
    await expect(served).rejects.toBeInstanceOf(PeerLostError);
    expect(m0!.pendingReceivers()).toBe(0);

    const ac = new AbortController();
    const stuck = psWorkerStep(m1!, 'w0', new Float32Array(P), { runId: 0, step: 1, signal: ac.signal });
    ac.abort(new AbortError('stop'));
    await expect(stuck).rejects.toThrow('stop');
    // The step-0 pull never gets an answer either; abandon it by killing the server.
    h.kill('w0');
    await expect(pulled).rejects.toBeInstanceOf(PeerLostError);
    expect(m1!.pendingReceivers()).toBe(0);
  });
});
