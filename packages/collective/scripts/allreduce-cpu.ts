// CPU cost of the ring all-reduce over createMesh + memoryTransport (latency 0, infinite bandwidth):
// every rank runs in this one thread, so the time is the JS work of all ranks together.
//   node --import tsx packages/collective/scripts/allreduce-cpu.ts [N...] [--mib 32] [--reps 5]
//     [--bucket 262144] [--frame 65536]
// Prints per repetition the busbw (S * 2(N-1)/N / time, MB = 1e6 B, as apps/bench) and checks that
// every rank holds bit-identical sums.
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Mesh } from '@peertrain/transport';
import { ringAllReduce } from '../src/index.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const flagValues = new Set(
  ['mib', 'reps', 'bucket', 'frame']
    .map((f) => process.argv.indexOf(`--${f}`))
    .filter((i) => i >= 0)
    .map((i) => i + 1),
);
const ns = process.argv
  .slice(2)
  .filter((a, i) => !a.startsWith('--') && !flagValues.has(i + 2))
  .map(Number);
const sizeElems = (arg('mib', 32) * 2 ** 20) / 4;
const reps = arg('reps', 5);
const bucketElems = arg('bucket', 262_144);
const maxFrameBytes = arg('frame', 65_536);

async function once(n: number, rep: number): Promise<{ ms: number; cpuMs: number; busbw: number }> {
  const net = createMemoryNetwork();
  const ids = Array.from({ length: n }, (_, i) => `p${i}`);
  const meshes: Mesh[] = ids.map((id) => createMesh(memoryTransport(net, id), { maxFrameBytes }));
  const data = ids.map((_, r) => {
    const a = new Float32Array(sizeElems);
    for (let i = 0; i < a.length; i++) a[i] = (i & 1023) / 7 + r + rep;
    return a;
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    meshes.map((m, r) =>
      ringAllReduce(m, ids, data[r] as Float32Array, { runId: 1, step: rep, bucketElems }),
    ),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (process.env.CPU_SPLIT)
    console.log(`user ${(cpu.user / 1000).toFixed(0)} ms, sys ${(cpu.system / 1000).toFixed(0)} ms`);
  const first = new Uint32Array((data[0] as Float32Array).buffer);
  for (let r = 1; r < n; r++) {
    const other = new Uint32Array((data[r] as Float32Array).buffer);
    for (let i = 0; i < first.length; i++) {
      if (first[i] !== other[i]) throw new Error(`rank ${r} differs from rank 0 at ${i}`);
    }
  }
  await Promise.all(meshes.map((m) => m.close()));
  const bytes = sizeElems * 4 * ((2 * (n - 1)) / n);
  return { ms, cpuMs, busbw: bytes / 1e6 / (ms / 1000) };
}

for (const n of ns.length > 0 ? ns : [2, 3]) {
  const bws: number[] = [];
  /** Process CPU ms per MB sent by all ranks together (the JS cost of one rank's MB). */
  const cpus: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const { ms, cpuMs, busbw } = await once(n, rep);
    bws.push(busbw);
    cpus.push(cpuMs / ((n * sizeElems * 4 * 2 * (n - 1)) / n / 1e6));
    console.log(
      `N=${n} rep ${rep}: ${ms.toFixed(0)} ms (cpu ${cpuMs.toFixed(0)} ms), busbw ${busbw.toFixed(1)} MB/s per rank`,
    );
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  console.log(
    `N=${n} busbw median ${med(bws).toFixed(1)} best ${Math.max(...bws).toFixed(1)} MB/s per rank, ` +
      `cpu median ${med(cpus).toFixed(2)} best ${Math.min(...cpus).toFixed(2)} ms per MB sent`,
  );
}
