import { describe, expect, it } from 'vitest';
import { schedule } from '@peertrain/schedules';
import { SpanRecorder } from '@peertrain/telemetry';
import type { ScheduleName } from '@peertrain/schedules';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import { fakeStage } from './fake-stage.ts';
import { runPipelineStep } from './pipeline.ts';

/** Runs one step of `name` over P stages on memory meshes; per stage, every held count reported. */
async function heldCounts(name: ScheduleName, stages: number, microBatches: number): Promise<number[][]> {
  const net = createMemoryNetwork();
  const ids = Array.from({ length: stages }, (_, s) => `stage-${s}`);
  const meshes = ids.map((id) => createMesh(memoryTransport(net, id)));
  for (let s = 0; s + 1 < stages; s++) await meshes[s]!.connect(ids[s + 1]!);
  const ops = schedule(name, stages, microBatches);
  const counts = ids.map(() => [] as number[]);
  const signal = new AbortController().signal;
  try {
    await Promise.all(
      ids.map((_, s) =>
        runPipelineStep({
          mesh: meshes[s]!,
          runId: 1,
          step: 0,
          ops: ops[s]!,
          stage: fakeStage(s, stages, { width: 8 }),
          prev: s > 0 ? ids[s - 1]! : null,
          next: s + 1 < stages ? ids[s + 1]! : null,
          params: new Float32Array(0),
          grads: new Float32Array(0),
          spans: new SpanRecorder({ peerId: ids[s]!, now: () => performance.now() }),
          signal,
          optimizer: () => Promise.resolve(),
          onHeld: (n) => counts[s]!.push(n),
        }),
      ),
    );
  } finally {
    await Promise.all(meshes.map((m) => m.close()));
  }
  return counts;
}

describe('saved activations a stage reports while it walks its schedule', () => {
  it('1F1B holds at most P - s micro-batches on stage s; GPipe holds all M; both end at 0', async () => {
    const [P, M] = [3, 6];
    const oneF = await heldCounts('1f1b', P, M);
    const gpipe = await heldCounts('gpipe', P, M);
    for (let s = 0; s < P; s++) {
      expect(Math.max(...oneF[s]!)).toBe(Math.min(P - s, M));
      expect(Math.max(...gpipe[s]!)).toBe(M);
      expect(oneF[s]!.at(-1)).toBe(0);
      expect(gpipe[s]!.at(-1)).toBe(0);
      // One report per forward and per backward.
      expect(oneF[s]).toHaveLength(2 * M);
    }
  });
});
