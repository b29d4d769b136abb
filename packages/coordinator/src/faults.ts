import { encodeMessage } from '@peertrain/protocol';
import type { Hub } from './hub.ts';

/** Fault injection ('slow'): how many times slower the last worker computes. */
export const SLOW_FACTOR = 3;

/**
 * Fault injection ('malformed'): one tensor frame encoded by protocol, then cut 8 bytes short, so
 * its header promises more payload than it carries (protocol refuses it: 'bad-length'). The wire
 * format stays protocol's alone; this only damages what protocol wrote.
 */
export function malformedFrame(runId: number): Uint8Array {
  const tensor = {
    runId,
    step: 0,
    microBatch: null,
    tag: 0,
    dtype: 'float32' as const,
    shape: [16],
    data: new Uint8Array(64), // [16] float32
  };
  const [frame] = encodeMessage({ kind: 'tensor', tensor }, { maxFrameBytes: 1024, msgId: 0 });
  return frame!.slice(0, frame!.byteLength - 8);
}

/**
 * Fault injection ('join@K', elastic runs): the step boundary at which the run waits for one more
 * peer and admits it (the harness opens its tab once K steps are done), or null. Waiting makes the
 * join land at exactly K however long the newcomer's tab takes to load.
 */
export function joinFaultStep(faults: readonly string[] | undefined): number | null {
  for (const f of faults ?? []) {
    const m = /^join@(\d+)$/.exec(f);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Fault injection ('slow'): the worker stretches each step's computation SLOW_FACTOR times. */
export function injectSlowWorker(hub: Hub, runId: number, peerId: string): void {
  hub.log(`fault injection: ${peerId} computes ${SLOW_FACTOR}x slower`);
  hub.send(peerId, { type: 'slow', runId, factor: SLOW_FACTOR });
}

/** Fault injection: a frame the worker must refuse and carry on (malformedFrame). */
export async function injectMalformedFrame(hub: Hub, runId: number, peerId: string): Promise<void> {
  hub.log(`fault injection: sending a malformed frame to ${peerId}`);
  await hub.mesh.sendRaw(peerId, malformedFrame(runId));
}
