import { describe, it } from 'vitest';
import { transportComplianceCases } from './compliance.ts';
import type { TransportPair } from './compliance.ts';
import { createMemoryNetwork, memoryTransport } from './memory.ts';
import type { MemoryTransportOptions } from './memory.ts';

function memoryPair(opts: MemoryTransportOptions): () => Promise<TransportPair> {
  return () => {
    const net = createMemoryNetwork();
    const a = memoryTransport(net, 'peer-a', opts);
    const b = memoryTransport(net, 'peer-b', opts);
    return Promise.resolve({
      a,
      b,
      cleanup: async () => {
        await a.close();
        await b.close();
      },
    });
  };
}

const variants: [string, MemoryTransportOptions, { maxBufferedAmount: number }][] = [
  ['memory transport, unthrottled', {}, { maxBufferedAmount: (1 << 20) + 65_536 }],
  [
    'memory transport, 400 MB/s with 1 ms latency and 64 KiB messages',
    { bytesPerSec: 400e6, latencyMs: 1, maxMessageSize: 65_536, highWaterMark: 512 * 1024 },
    { maxBufferedAmount: 512 * 1024 + 65_536 },
  ],
];

for (const [title, opts, limits] of variants) {
  describe(title, () => {
    for (const c of transportComplianceCases(memoryPair(opts), { ...limits, eventTimeoutMs: 5_000 })) {
      it(c.name, async () => {
        await c.run(AbortSignal.timeout(30_000));
      });
    }
  });
}
