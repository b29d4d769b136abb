// Tests only: runs a training method on N workers in one Node process, without the coordinator.
// Each worker is a real mesh over the in-memory transport, a real engine session (TensorFlow.js
// cpu) and the method's MethodRun; every step runs on all workers at once (as the coordinator's
// barrier grants it), and after each step the harness copies what each worker holds, so tests can
// check bit-identity after every exchange and count the bytes each step put on the wire.
import { sleep } from '@peertrain/base';
import { DATASETS, parseRunConfig } from '@peertrain/protocol';
import type { RunConfigInput, Shard } from '@peertrain/protocol';
import { SpanRecorder } from '@peertrain/telemetry';
import type { Span } from '@peertrain/telemetry';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Mesh } from '@peertrain/transport';
import type { TrainSession } from '../compute.ts';
import { nodeCompute } from '../test-cluster.ts';
import { openLinks } from '../links.ts';
import { methodName, workerMethod } from './index.ts';
import type { Assign, MethodRun } from './index.ts';

export interface ClusterResult {
  /** [step][worker] evalParams after the step (copies). */
  params: Float32Array[][];
  /** [step][worker] the batch loss each worker reported. */
  losses: (number | null)[][];
  /** [step][worker] bytes the worker's mesh sent during the step (frames, as counted on the wire). */
  bytesSent: number[][];
  /** [worker] every span recorded during the run, and while it was disposed. */
  spans: Span[][];
  /** [step][worker] whether the method let the step's report wait (MethodRun.holdReport). */
  held: boolean[][];
  /** [step][worker] StepOutcome.extraSamples (0 where absent). */
  extraSamples: number[][];
  /** [step][worker] StepOutcome.computeMs (lockstep runs only). */
  computeMs: number[][];
}

export interface ClusterOptions {
  runId?: number;
  signal?: AbortSignal;
  /** Ranks whose steps run (default all): the others set up, open links and then stay idle. */
  stepping?: (rank: number) => boolean;
  /** Steps to run (default config.steps): a run cut short is disposed mid-run. */
  steps?: number;
  /**
   * Each worker steps on its own (as real workers do within the coordinator's window), sleeping
   * this many ms before each of its steps, instead of all stepping together: uneven devices.
   */
  delayMs?: (rank: number) => number;
}

/** Equal contiguous shards of the dataset's training split, in rank order (the coordinator's default). */
function equalShards(train: number, n: number): Shard[] {
  const count = Math.floor(train / n);
  return Array.from({ length: n }, (_, r) => ({ start: r * count, count }));
}

/** Trains `input` (workers = N) for config.steps steps on N in-process workers. */
export async function runCluster(input: RunConfigInput, opts: ClusterOptions = {}): Promise<ClusterResult> {
  const config = parseRunConfig(input);
  const n = config.workers;
  const runId = opts.runId ?? 1;
  const signal = opts.signal ?? new AbortController().signal;
  const net = createMemoryNetwork();
  const peers = Array.from({ length: n }, (_, r) => `w${r}`);
  const meshes: Mesh[] = peers.map((id) =>
    createMesh(memoryTransport(net, id, { maxMessageSize: 64 * 1024 })),
  );
  const compute = await nodeCompute();
  const allShards = equalShards(DATASETS[config.dataset].train, n);
  const method = workerMethod(methodName(config));
  const sessions: TrainSession[] = [];
  const runs: MethodRun[] = [];
  const recorders = peers.map((peerId) => new SpanRecorder({ peerId, now: () => performance.now() }));
  const result: ClusterResult = {
    params: [],
    losses: [],
    bytesSent: [],
    spans: peers.map(() => []),
    held: [],
    extraSamples: [],
    computeMs: [],
  };
  try {
    const assigns: Assign[] = peers.map((_, rank) => ({
      type: 'assign',
      runId,
      rank,
      peers,
      role: config.sync === 'ps' && rank === 0 ? { kind: 'worker+server' } : { kind: 'worker' },
      ...(config.sync === 'ps' ? { serverRank: 0 } : {}),
      shard: allShards[rank]!,
      allShards,
      config,
    }));
    await Promise.all(
      assigns.map(async (assign, r) => {
        const mesh = meshes[r]!;
        const [session] = await Promise.all([
          compute.prepare({ config, shard: assign.shard, allShards }, { signal }),
          n > 1 ? openLinks(mesh, method.links(assign), 10_000, signal) : undefined,
        ]);
        sessions[r] = session;
        const spans = recorders[r]!;
        runs[r] = method.setup({ mesh, assign, session, signal, spans, onHeld: () => undefined });
      }),
    );
    const stepping = opts.stepping ?? (() => true);
    const steps = opts.steps ?? config.steps;
    if (opts.delayMs) {
      await unevenSteps(runs, steps, opts.delayMs, result);
      return result;
    }
    for (let step = 0; step < steps; step++) {
      const before = meshes.map((m) => m.stats().total.bytesSent);
      const outcomes = await Promise.all(
        runs.map((run, r) => (stepping(r) ? run.step(step) : Promise.resolve(null))),
      );
      result.losses.push(outcomes.map((o) => o?.loss ?? null));
      result.params.push(runs.map((run) => run.evalParams?.slice() ?? new Float32Array(0)));
      result.bytesSent.push(meshes.map((m, r) => m.stats().total.bytesSent - before[r]!));
      result.held.push(runs.map((run) => run.holdReport?.(step) ?? false));
      result.extraSamples.push(outcomes.map((o) => o?.extraSamples ?? 0));
      result.computeMs.push(outcomes.map((o) => o?.computeMs ?? 0));
      recorders.forEach((rec, r) => result.spans[r]!.push(...rec.drain()));
    }
    return result;
  } finally {
    for (const run of runs) run.dispose();
    await sleep(10); // what dispose aborted settles (and records its spans)
    recorders.forEach((rec, r) => result.spans[r]!.push(...rec.drain()));
    for (const session of sessions) session.dispose();
    await Promise.all(meshes.map((m) => m.close()));
    compute.dispose();
  }
}

/** Every worker steps on its own, `delayMs(rank)` before each step; params/losses/extraSamples only. */
async function unevenSteps(
  runs: readonly MethodRun[],
  steps: number,
  delayMs: (rank: number) => number,
  result: ClusterResult,
): Promise<void> {
  for (let s = 0; s < steps; s++) {
    result.params.push([]);
    result.losses.push([]);
    result.extraSamples.push([]);
  }
  await Promise.all(
    runs.map(async (run, r) => {
      for (let step = 0; step < steps; step++) {
        await sleep(delayMs(r));
        const o = await run.step(step);
        result.losses[step]![r] = o.loss;
        result.params[step]![r] = run.evalParams?.slice() ?? new Float32Array(0);
        result.extraSamples[step]![r] = o.extraSamples ?? 0;
      }
    }),
  );
}

/** Index of the first element whose bits differ between a and b, or -1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.findIndex((v, i) => v !== y[i]);
}
