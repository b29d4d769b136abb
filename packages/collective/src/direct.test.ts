import { CompressionError, createCompressor } from '@peertrain/compress';
import type { Compressor } from '@peertrain/compress';
import { ConfigError, ProtocolError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { HOP_WORTH_BYTES, allReduceAlgorithm, directAllReduce } from './direct.ts';
import { PAIRWISE_MAX_PEERS } from './pairwise.ts';
import { ids, inputs, sameBits, useTestHubs } from './testMesh.ts';

const newHub = useTestHubs();
describe('directAllReduce', () => {
  it('fp32: every peer ends with the float32 sum in rank order, the same bits', async () => {
    const group = ids(4);
    const xs = inputs(4, 300, 3);
    const h = newHub();
    const meshes = group.map((id) => h.mesh(id));
    const data = xs.map((x) => x.slice());
    const stats = await Promise.all(
      meshes.map((m, r) => directAllReduce(m, group, data[r]!, { runId: 1, step: 2 })),
    );
    expect(sameBits(data)).toBe(true);
    const f = Math.fround;
    for (let i = 0; i < 300; i++) {
      let s = 0;
      for (const x of xs) s = f(s + x[i]!);
      expect(data[2]![i]).toBe(s);
    }
    expect(stats.map((s) => [s.bytesSent, s.bytesReceived, s.buckets])).toEqual(
      group.map(() => [3 * 1200, 3 * 1200, 1]),
    );
  });

  it('int8: every peer sums the same decoded payloads, its own included; one encoding per peer', async () => {
    const group = ids(3);
    const xs = inputs(3, 1000, 5);
    const comps = group.map((_, r) => createCompressor({ kind: 'int8' }, { length: 1000, seed: 40 + r }));
    const h = newHub();
    const meshes = group.map((id) => h.mesh(id));
    const data = xs.map((x) => x.slice());
    const stats = await Promise.all(
      meshes.map((m, r) =>
        directAllReduce(m, group, data[r]!, {
          runId: 1,
          step: 0,
          codec: comps[r] as Extract<Compressor, { kind: 'int8' }>,
        }),
      ),
    );
    expect(sameBits(data)).toBe(true);
    // int8 with a scale per 256 values: close to the exact sum, at about a quarter of fp32's bytes.
    for (let i = 0; i < 1000; i++)
      expect(Math.abs(data[0]![i]! - (xs[0]![i]! + xs[1]![i]! + xs[2]![i]!))).toBeLessThan(0.05);
    expect(stats[0]!.bytesSent).toBeLessThan(0.27 * 2 * 4000);
  });

  it('a garbage payload is refused by name, the data left as it was, nothing pending', async () => {
    const h = newHub();
    const [a, b] = [h.mesh('p0'), h.mesh('p1')];
    h.link('p0', 'p1');
    const data = Float32Array.from({ length: 100 }, (_, i) => i);
    const codec = createCompressor({ kind: 'fp16' }, { length: 100, seed: 1 }) as Extract<
      Compressor,
      { kind: 'fp16' }
    >;
    const done = directAllReduce(a, ['p0', 'p1'], data, { runId: 1, step: 1, codec });
    const key = { runId: 1, step: 1, microBatch: null, tag: 0 };
    await b.sendTensor('p0', { ...key, dtype: 'uint8', shape: [5], data: new Uint8Array(5) });
    await expect(done).rejects.toThrow(CompressionError);
    await expect(done).rejects.toThrow(/from p1/);
    expect(data[7]).toBe(7);
    expect(a.pendingReceivers()).toBe(0);
    // fp32 of the wrong length: ProtocolError, data untouched.
    const h2 = newHub();
    const [c, d] = [h2.mesh('p0'), h2.mesh('p1')];
    h2.link('p0', 'p1');
    const plain = directAllReduce(c, ['p0', 'p1'], data, { runId: 1, step: 1 });
    await d.sendTensor('p0', { ...key, dtype: 'float32', shape: [3], data: new Uint8Array(12) });
    await expect(plain).rejects.toThrow(ProtocolError);
    expect(data[7]).toBe(7);
  });

  it('rejects an aborted signal, a group without this peer and a tag past u32', async () => {
    const m = newHub().mesh('p0');
    await expect(
      directAllReduce(m, ['p0', 'p1'], new Float32Array(4), {
        runId: 1,
        step: 1,
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(
      directAllReduce(m, ['p1', 'p2'], new Float32Array(4), { runId: 1, step: 1 }),
    ).rejects.toThrow(ConfigError);
    await expect(
      directAllReduce(m, ['p0', 'p1'], new Float32Array(4), { runId: 1, step: 1, tagBase: 2 ** 32 }),
    ).rejects.toThrow(ConfigError);
  });
});

describe('allReduceAlgorithm', () => {
  it('direct at two peers and while its extra bytes stay under one hop; pairwise, then the ring, beyond', () => {
    expect(allReduceAlgorithm(2, 100 << 20)).toBe('direct');
    // N = 3: extra over pairwise = L (2 - 4/3) = 2L/3 <= 1 hop's worth: up to 96 KiB.
    expect(allReduceAlgorithm(3, 96 * 1024)).toBe('direct');
    expect(allReduceAlgorithm(3, 97 * 1024)).toBe('pairwise');
    // The MNIST CNN's 9,098 fp32 gradients go direct at 4 tabs; the MLP's 101,770 pairwise.
    expect(allReduceAlgorithm(4, 4 * 9_098)).toBe('direct');
    expect(allReduceAlgorithm(4, 4 * 101_770)).toBe('pairwise');
    expect(allReduceAlgorithm(PAIRWISE_MAX_PEERS, 4 * 101_770)).toBe('pairwise');
    expect(allReduceAlgorithm(PAIRWISE_MAX_PEERS + 1, 4 * 101_770)).toBe('ring');
    expect(HOP_WORTH_BYTES).toBe(65_536);
  });
});
