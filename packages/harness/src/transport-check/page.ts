// Runs the transport compliance suite over the PeerJS adapter in this page: two transports
// with random ids, a real PeerJS server (host/port/path from the URL) and real data channels.
import { runPeerjsCompliance } from '@peertrain/transport/peerjs';
import type { ComplianceResult } from '@peertrain/transport/compliance';

const q = new URLSearchParams(location.search);
(
  globalThis as unknown as { __transportCheck: Promise<ComplianceResult[] | { error: string }> }
).__transportCheck = runPeerjsCompliance({
  host: q.get('host') ?? location.hostname,
  port: Number(q.get('port')),
  path: q.get('path') ?? '/peerjs',
  iceServers: [],
}).catch((err: unknown) => ({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }));
