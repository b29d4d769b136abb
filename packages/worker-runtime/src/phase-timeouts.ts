// Named timeouts for the waits inside a step (protocol's PHASE_TIMEOUTS lists them all): a view of
// the mesh whose every receive fails with PhaseTimeoutError(phase) after the phase's time. One
// receive is one all-reduce hop, or one activation / gradient between pipeline stages.
import { asError } from '@peertrain/base';
import { PhaseTimeoutError } from '@peertrain/protocol';
import type { PhaseTimeout } from '@peertrain/protocol';
import type { AbortOptions, Mesh, TensorKey, TensorMessage } from '@peertrain/transport';

/** `mesh`, with recvTensor bounded by `timeout` (the caller's own abort keeps its reason). */
export function hopTimed(mesh: Mesh, timeout: PhaseTimeout): Mesh {
  const recvTensor = async (
    peerId: string,
    key: TensorKey,
    opts: AbortOptions = {},
  ): Promise<TensorMessage> => {
    const limit = AbortSignal.timeout(timeout.ms);
    const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit;
    try {
      return await mesh.recvTensor(peerId, key, { signal });
    } catch (e) {
      if (limit.aborted && !opts.signal?.aborted) throw new PhaseTimeoutError(timeout.phase, timeout.ms);
      throw asError(e);
    }
  };
  return {
    get localId() {
      return mesh.localId;
    },
    connect: (peerId, o) => mesh.connect(peerId, o),
    isConnected: (peerId) => mesh.isConnected(peerId),
    linkKind: (peerId) => mesh.linkKind(peerId),
    peers: () => mesh.peers(),
    sendControl: (peerId, msg, o) => mesh.sendControl(peerId, msg, o),
    sendTensor: (peerId, msg, o) => mesh.sendTensor(peerId, msg, o),
    recvTensor,
    onControl: (h) => mesh.onControl(h),
    onPeer: (h) => mesh.onPeer(h),
    onError: (h) => mesh.onError(h),
    sendRaw: (peerId, bytes, o) => mesh.sendRaw(peerId, bytes, o),
    stats: () => mesh.stats(),
    close: () => mesh.close(),
  };
}
