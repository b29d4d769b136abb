// Runs the transport compliance suite over the PeerJS adapter in this page: two transports
// with random ids, a real PeerJS server (host/port/path from the URL) and real data channels; then
// a hostile peer on the acknowledgement channel (hostile-ack.ts).
import { runPeerjsCompliance } from '@peertrain/transport/peerjs';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import { hostileAckCases } from './hostile-ack.ts';

const q = new URLSearchParams(location.search);
const server = {
  host: q.get('host') ?? location.hostname,
  port: Number(q.get('port')),
  path: q.get('path') ?? '/peerjs',
};
(
  globalThis as unknown as { __transportCheck: Promise<ComplianceResult[] | { error: string }> }
).__transportCheck = (async () => [
  ...(await runPeerjsCompliance({ ...server, iceServers: [] })),
  ...(await hostileAckCases(server)),
])().catch((err: unknown) => ({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }));
