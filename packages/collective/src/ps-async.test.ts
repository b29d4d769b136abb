import { parseCompression } from '@peertrain/compress';
import { ConfigError, PeerLostError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { createAsyncParameterServer } from './ps-async.ts';
import type { AsyncPsOptions, AsyncPsPeer } from './ps-async.ts';
import { createParameterServer, psWorkerStep } from './ps.ts';
import type { PsShard } from './ps.ts';
import { mulberry32 } from '@peertrain/base';
import { useTestHubs } from './testMesh.ts';
import type { TestMesh } from './testMesh.ts';

const newHub = useTestHubs();

const LR = 0.1;
const sgd = (params: Float32Array, grad: Float32Array): void => {
  for (let i = 0; i < params.length; i++) params[i] = params[i]! - LR * grad[i]!;
};

/** A deterministic "gradient" of worker `rank` at `params` ([P] -> [P]), pulling towards zero. */
function gradient(params: Float32Array, rank: number, step: number): Float32Array {
  const rnd = mulberry32(1000 * step + rank);
  return params.map((p) => p * (rank + 1) * 0.5 + (rnd() * 2 - 1) * 0.1);
}

const P = 41;
const initial = Float32Array.from({ length: P }, (_, i) => Math.sin(i));

interface Cluster {
  hub: ReturnType<typeof newHub>;
  ids: string[];
  meshes: TestMesh[];
  peers: AsyncPsPeer[];
}

function cluster(n: number, extra: Partial<AsyncPsOptions>, jitterMs = 2): Cluster {
  const h = newHub({ jitterMs, random: mulberry32(5) });
  const ids = Array.from({ length: n }, (_, i) => `w${i}`);
  const meshes = ids.map((id) => h.mesh(id));
  const peers = meshes.map((m) =>
    createAsyncParameterServer(m, {
      workers: ids,
      params: initial.slice(),
      runId: 3,
      staleness: 1,
      totalSteps: 6,
      apply: sgd,
      ...extra,
    }),
  );
  return { hub: h, ids, meshes, peers };
}

/** Runs `steps` steps on every peer; compute(rank) is awaited before each gradient. */
async function train(
  c: Cluster,
  steps: number,
  compute: (rank: number) => Promise<void> = () => Promise.resolve(),
): Promise<number[][]> {
  return Promise.all(
    c.peers.map(async (peer, rank) => {
      const seen: number[] = [];
      for (let step = 0; step < steps; step++) {
        const params = await peer.ready();
        await compute(rank);
        await peer.push(step, gradient(params, rank, step));
        const s = peer.takeStaleness();
        if (s !== null) seen.push(s);
      }
      await peer.final();
      const s = peer.takeStaleness();
      if (s !== null) seen.push(s);
      return seen;
    }),
  );
}

/** The servers' current parameters, shard by shard, as one vector [P]. */
function serverVector(c: Cluster): Float32Array {
  const out = new Float32Array(P);
  for (const r of c.peers[0]!.ranges) {
    const owner = c.peers[c.ids.indexOf(r.serverId)]!;
    out.set(owner.serverParams.subarray(r.start, r.end), r.start);
  }
  return out;
}

const twoShards: PsShard[] = [
  { serverId: 'w0', start: 0, end: 17 },
  { serverId: 'w1', start: 17, end: P },
];

describe('asynchronous parameter server', () => {
  it('N=1, S=0 equals synchronous SGD bit for bit', async () => {
    const c = cluster(1, { staleness: 0, totalSteps: 5 });
    const seen = await train(c, 5);
    const expected = initial.slice();
    for (let step = 0; step < 5; step++) sgd(expected, gradient(expected, 0, step));
    expect(c.peers[0]!.params).toEqual(expected);
    expect(seen[0]).toEqual([0, 0, 0, 0, 0]);
    c.peers[0]!.dispose();
  });

  it('sharded over two servers: every push applied once, the collector gets the servers exactly', async () => {
    const c = cluster(3, { ranges: twoShards, staleness: 1 });
    const seen = await train(c, 6);
    expect(c.peers[0]!.stats().pushesApplied).toBe(3 * 6);
    expect(c.peers[1]!.stats().pushesApplied).toBe(3 * 6);
    expect(c.peers[2]!.stats().pushesApplied).toBe(0);
    expect(c.peers[0]!.params).toEqual(serverVector(c));
    // Staleness is reported, and bounded: S own pushes plus what the 2 others pushed in between.
    for (const s of seen) {
      expect(s.length).toBeGreaterThan(0);
      for (const v of s) expect(v).toBeLessThanOrEqual(3 * (1 + 1) + 2);
    }
    // It learned: the parameters moved towards zero.
    const norm = (v: Float32Array): number => Math.hypot(...v);
    expect(norm(c.peers[0]!.params)).toBeLessThan(norm(initial) * 0.9);
    for (const m of c.meshes) expect(m.pendingReceivers()).toBe(0);
    for (const p of c.peers) p.dispose();
  });

  for (const codec of ['fp16', 'int8', 'topk:0.2']) {
    it(`${codec}: workers hold exactly the server's view of them; the error does not accumulate`, async () => {
      const plain = cluster(3, { ranges: twoShards });
      await train(plain, 6);
      const c = cluster(3, { ranges: twoShards, compression: parseCompression(codec) });
      await train(c, 6);
      const server = serverVector(c);
      // w1 and w2 pull shard 0 compressed from w0: each holds exactly w0's view of it.
      for (const rank of [1, 2]) {
        expect(c.peers[rank]!.params.subarray(0, 17)).toEqual(c.peers[0]!.viewOf(0, `w${rank}`));
      }
      expect(c.peers[1]!.viewOf(1, 'w2')).toEqual(c.peers[2]!.params.subarray(17));
      // The distance right after each pull is one pull's compression error, not a growing sum.
      const bound = codec === 'fp16' ? 1e-3 : codec === 'int8' ? 0.05 : 0.5;
      for (const p of c.peers.slice(0, 2)) expect(p.stats().pullError).toBeLessThan(bound);
      expect(plain.peers[0]!.stats().pullError).toBe(0);
      expect(c.peers[0]!.params).toEqual(server);
      expect(c.peers[2]!.stats().bytesSent).toBeLessThan(
        plain.peers[2]!.stats().bytesSent * (codec === 'fp16' ? 0.75 : 0.6),
      );
      for (const p of [...plain.peers, ...c.peers]) p.dispose();
    });
  }

  it('refuses powersgd and bad options with ConfigError', () => {
    const h = newHub();
    const m = h.mesh('w0');
    const base = { workers: ['w0', 'w1'], params: initial.slice(), runId: 1, totalSteps: 1, apply: sgd };
    expect(() =>
      createAsyncParameterServer(m, { ...base, staleness: 0, compression: parseCompression('powersgd:2') }),
    ).toThrow(ConfigError);
    expect(() => createAsyncParameterServer(m, { ...base, staleness: -1 })).toThrow(ConfigError);
  });

  it('workersMayLeave: a worker that leaves ends only its own pushes; without it the others fail', async () => {
    for (const mayLeave of [true, false]) {
      const c = cluster(3, { staleness: 1, workersMayLeave: mayLeave });
      const [w0, w1, w2] = c.peers as [AsyncPsPeer, AsyncPsPeer, AsyncPsPeer];
      for (let step = 0; step < 2; step++) await w2.push(step, gradient(await w2.ready(), 2, step));
      await w2.drain();
      c.hub.kill('w2');
      const survivors = train({ ...c, peers: [w0, w1] }, 6);
      if (!mayLeave) {
        await expect(survivors).rejects.toBeInstanceOf(PeerLostError);
      } else {
        await survivors;
        // Every push that reached the server was applied once: 6 from each survivor, w2's 2.
        expect(w0.stats().pushesApplied).toBe(14);
        expect(w0.params).toEqual(serverVector(c));
      }
      for (const p of c.peers) p.dispose();
    }
  });

  it('workersMayLeave: a worker the coordinator dropped (its link still open) is forgotten', async () => {
    const c = cluster(3, { staleness: 1, workersMayLeave: true });
    const [w0, w1, w2] = c.peers as [AsyncPsPeer, AsyncPsPeer, AsyncPsPeer];
    for (let step = 0; step < 2; step++) await w2.push(step, gradient(await w2.ready(), 2, step));
    await w2.drain();
    // w2 goes silent (a frozen tab); the survivors' servers hear it is out.
    for (const p of [w0, w1]) p.forget('w2');
    w0.forget('w0'); // a server is never forgotten
    await train({ ...c, peers: [w0, w1] }, 6);
    expect(w0.stats().pushesApplied).toBe(14);
    expect(w0.params).toEqual(serverVector(c));
    for (const p of c.peers) p.dispose();
  });

  it('rejects with PeerLostError when a server is lost, workersMayLeave or not', async () => {
    const c = cluster(2, { staleness: 0, workersMayLeave: true });
    const worker = c.peers[1]!;
    await worker.push(0, new Float32Array(P));
    c.hub.kill('w0');
    await expect(worker.ready()).rejects.toBeInstanceOf(PeerLostError);
    for (const p of c.peers) p.dispose();
  });
});

/**
 * A shared clock of ticks (a tick every 4 ms): a worker's compute waits a number of ticks, so a
 * worker slowed 3x takes 3 ticks per step whatever the machine's load does to timers.
 */
function ticker(): { wait: (ticks: number) => Promise<void>; stop: () => void } {
  let now = 0;
  const waiting: { at: number; resolve: () => void }[] = [];
  const timer = setInterval(() => {
    now++;
    for (const w of waiting.filter((x) => x.at <= now)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve();
    }
  }, 4);
  return {
    wait: (ticks) => new Promise((resolve) => waiting.push({ at: now + ticks, resolve })),
    stop: () => clearInterval(timer),
  };
}

describe('a worker slowed 3x', () => {
  const FAST_STEPS = 24;

  it("ps-async: the others are not held back (they finish >= 2x the slow one's steps)", async () => {
    const c = cluster(3, { staleness: 2, totalSteps: FAST_STEPS });
    const t = ticker();
    const done = [0, 0, 0];
    const slowAtFastEnd: number[] = [];
    try {
      await Promise.all(
        c.peers.map(async (peer, rank) => {
          for (let step = 0; step < FAST_STEPS; step++) {
            const params = await peer.ready();
            await t.wait(rank === 2 ? 3 : 1);
            await peer.push(step, gradient(params, rank, step));
            done[rank] = done[rank]! + 1;
          }
          if (rank !== 2) slowAtFastEnd.push(done[2]!);
          await peer.final();
        }),
      );
    } finally {
      t.stop();
    }
    for (const slow of slowAtFastEnd) expect(FAST_STEPS).toBeGreaterThanOrEqual(2 * slow);
    for (const p of c.peers) p.dispose();
  });

  it('synchronous ps: everyone waits for the slow one (lockstep)', async () => {
    const h = newHub({ jitterMs: 1, random: mulberry32(2) });
    const ids = ['w0', 'w1', 'w2'];
    const meshes = ids.map((id) => h.mesh(id));
    const server = createParameterServer(meshes[0]!, {
      workers: ids,
      params: initial.slice(),
      apply: sgd,
      runId: 1,
    });
    const t = ticker();
    const done = [0, 0, 0];
    const slowAtFastEnd: number[] = [];
    const steps = 12;
    try {
      await Promise.all(
        ids.map(async (id, rank) => {
          let params: Float32Array = initial.slice();
          for (let step = 0; step < steps; step++) {
            await t.wait(rank === 2 ? 3 : 1);
            const grad = gradient(params, rank, step);
            params =
              rank === 0
                ? (await server.serveStep(step, grad)).slice()
                : await psWorkerStep(meshes[rank]!, 'w0', grad, { runId: 1, step });
            done[rank] = done[rank]! + 1;
          }
          if (rank !== 2) slowAtFastEnd.push(done[2]!);
        }),
      );
    } finally {
      t.stop();
    }
    for (const slow of slowAtFastEnd) expect(slow).toBeGreaterThanOrEqual(steps - 1);
  });
});
