// Benchmark page (apps/bench/index.html): one per tab. It exposes window.peertrainBench (api.ts)
// and does nothing by itself; the driver (main.ts) calls it with page.evaluate, all tabs at once.
import { ConfigError, PhaseTimeoutError, TransportError, coordinatorPeerId } from '@peertrain/protocol';
import { createCoordinator } from '@peertrain/coordinator';
import type { Coordinator } from '@peertrain/coordinator';
import { createMemoryNetwork, createMesh, memoryTransport } from '@peertrain/transport';
import type { Connection, Mesh, TensorKey, Transport, Unsubscribe } from '@peertrain/transport';
import { peerjsTransport } from '@peertrain/transport/peerjs';
import { withTabLinks } from '@peertrain/transport/tab-links';
import { ringAllReduce } from '@peertrain/collective';
import type { AllReduceStats } from '@peertrain/collective';
import type {
  AllReduceOptions,
  AllReduceResult,
  BenchApi,
  ConnectOptions,
  ConnectResult,
  MemoryAllReduceOptions,
  MemoryAllReduceResult,
  MeshRecvOptions,
  MeshRecvResult,
  MeshSendOptions,
  MeshSendResult,
  CoordinatorOpenOptions,
  CoordinatorRunOptions,
  CoordinatorRunResult,
  CoordinatorWaitOptions,
  RawArmOptions,
  RawSendOptions,
  RawSendResult,
  RawWaitOptions,
  RawWaitResult,
  InitResult,
  OpenOptions,
  PingOptions,
} from './api.ts';
import { PROGRESS_MARKER } from './api.ts';
import { expectedSum, fillRank } from './pattern.ts';
import { LinkTracer, summarizeTrace } from './trace.ts';
import type { TraceEvent } from './trace.ts';

const epochNow = (): number => performance.timeOrigin + performance.now();

function log(line: string): void {
  const el = document.getElementById('log');
  if (el) el.textContent += `${line}\n`;
}

interface SignalLocation {
  host: string;
  port: number;
  path: string;
  secure: boolean;
}

/** GET /peertrain.json (written by the harness's static server): where the signaling server is. */
async function fetchPageConfig(
  signal: AbortSignal,
): Promise<{ signal: SignalLocation; iceServers: RTCIceServer[] }> {
  const res = await fetch('/peertrain.json', { cache: 'no-store', signal });
  if (!res.ok) throw new ConfigError('cannot load /peertrain.json', [`HTTP ${res.status}`]);
  const body: unknown = await res.json();
  const issues: string[] = [];
  const rec = (v: unknown): Record<string, unknown> | null =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  const root = rec(body);
  const s = rec(root?.signal);
  if (!s) issues.push('signal: expected an object');
  const port = s?.port;
  const path = s?.path;
  if (typeof port !== 'number' || !Number.isInteger(port)) issues.push('signal.port: expected an integer');
  if (typeof path !== 'string' || !path.startsWith('/')) issues.push('signal.path: expected a path');
  const ice = root?.iceServers;
  if (!Array.isArray(ice)) issues.push('iceServers: expected an array');
  if (issues.length > 0 || typeof port !== 'number' || typeof path !== 'string' || !Array.isArray(ice)) {
    throw new ConfigError('invalid /peertrain.json', issues);
  }
  return {
    signal: {
      host: typeof s?.host === 'string' ? s.host : location.hostname,
      port,
      path,
      secure: s?.secure === true,
    },
    // Passed to RTCPeerConnection as given; the browser validates each entry.
    iceServers: ice as RTCIceServer[],
  };
}

/**
 * Runs `fn` with a signal that aborts on PhaseTimeoutError(phase) after `ms`, or when the page's
 * benchmark is closed. The timer is cleared on every path out.
 */
async function withTimeout<T>(
  phase: string,
  ms: number,
  life: AbortSignal,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new PhaseTimeoutError(phase, ms)), ms);
  const onLife = (): void => ac.abort(life.reason);
  life.addEventListener('abort', onLife, { once: true });
  if (life.aborted) onLife();
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
    life.removeEventListener('abort', onLife);
  }
}

/** Resolves at page epoch time `at` (setTimeout precision), or rejects on abort. */
function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const ms = at - epochNow();
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Byte count of one incoming raw link, and who waits for the armed total. */
interface RawCounter {
  conn: Connection;
  bytes: number;
  messages: number;
  /** Armed total; 0 when not armed. */
  target: number;
  endEpoch: number | null;
  wake: (() => void) | null;
  unsub: Unsubscribe;
}

/** A raw transport: its dialled links and the byte counters of its accepted ones, by remote id. */
interface RawEndpoint {
  transport: Transport;
  outgoing: Map<string, Connection>;
  incoming: Map<string, RawCounter>;
  unsub: Unsubscribe;
}

interface MeshEndpoint {
  transport: Transport;
  mesh: Mesh;
  /** Records the frames of the mesh's links during an all-reduce. */
  tracer?: LinkTracer;
}

/** A coordinator hosted by this tab (part 4), on its own transport and mesh. */
interface HostedCoordinator {
  coordinator: Coordinator;
  mesh: Mesh;
  transport: Transport;
}

type PageConfig = Awaited<ReturnType<typeof fetchPageConfig>>;

class BenchPage implements BenchApi {
  private config: PageConfig | null = null;
  private readonly raws = new Map<string, RawEndpoint>();
  private readonly meshes = new Map<string, MeshEndpoint>();
  private readonly life = new AbortController();
  /** One all-reduce buffer per size, reused across repetitions. [sizeElems] float32 */
  private readonly buffers = new Map<number, Float32Array>();
  /** The hosted coordinator (part 4) and the transport and mesh under it. */
  private host: HostedCoordinator | null = null;

  async init(opts: { timeoutMs: number }): Promise<InitResult> {
    this.config = await withTimeout(
      'load /peertrain.json',
      opts.timeoutMs,
      this.life.signal,
      fetchPageConfig,
    );
    return { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency };
  }

  async open(opts: OpenOptions): Promise<void> {
    const cfg = this.config;
    if (!cfg) throw new TransportError('init has not run');
    if (this.raws.has(opts.id) || this.meshes.has(opts.id))
      throw new ConfigError('open', [`${opts.id} is already open`]);
    const transport = await withTimeout(`register ${opts.id}`, opts.timeoutMs, this.life.signal, (signal) =>
      peerjsTransport({
        id: opts.id,
        ...cfg.signal,
        iceServers: cfg.iceServers,
        highWaterMark: opts.highWaterMark,
        signal,
      }),
    );
    if (opts.kind === 'mesh') {
      const tracer = new LinkTracer();
      const mesh = createMesh(
        tracer.wrapTransport(transport),
        opts.maxFrameBytes !== undefined ? { maxFrameBytes: opts.maxFrameBytes } : {},
      );
      this.meshes.set(opts.id, { transport, mesh, tracer });
    } else {
      const ep: RawEndpoint = { transport, outgoing: new Map(), incoming: new Map(), unsub: () => undefined };
      ep.unsub = transport.onConnection((conn) => acceptRaw(ep, conn));
      this.raws.set(opts.id, ep);
    }
    log(`open: ${opts.kind} ${opts.id}`);
  }

  clockSample(): number {
    return epochNow();
  }

  async connect(opts: ConnectOptions): Promise<ConnectResult> {
    const t0 = performance.now();
    const meshEp = this.meshes.get(opts.local);
    const rawEp = meshEp ? undefined : this.rawEndpoint(opts.local);
    return withTimeout(
      `connect ${opts.local} -> ${opts.peerId}`,
      opts.timeoutMs,
      this.life.signal,
      async (signal) => {
        if (meshEp) {
          await meshEp.mesh.connect(opts.peerId, { signal });
          return { maxMessageSize: 0, ms: performance.now() - t0 };
        }
        const ep = rawEp ?? this.rawEndpoint(opts.local);
        const existing = ep.outgoing.get(opts.peerId);
        const conn =
          existing && !existing.closed ? existing : await ep.transport.dial(opts.peerId, { signal });
        ep.outgoing.set(opts.peerId, conn);
        return { maxMessageSize: conn.maxMessageSize, ms: performance.now() - t0 };
      },
    );
  }

  async rawArm(opts: RawArmOptions): Promise<void> {
    const ep = this.rawEndpoint(opts.local);
    const c = await withTimeout(
      `raw link from ${opts.from}`,
      opts.timeoutMs,
      this.life.signal,
      async (signal) => {
        // The dialler's dial resolves when its end opens; ours is accepted a moment later.
        for (;;) {
          const found = ep.incoming.get(opts.from);
          if (found && !found.conn.closed) return found;
          await sleepUntil(epochNow() + 20, signal);
        }
      },
    );
    c.bytes = 0;
    c.messages = 0;
    c.target = opts.bytes;
    c.endEpoch = null;
    c.wake = null;
  }

  async rawSend(opts: RawSendOptions): Promise<RawSendResult> {
    const conn = this.rawEndpoint(opts.local).outgoing.get(opts.to);
    if (!conn || conn.closed) throw new TransportError(`no open raw link ${opts.local} -> ${opts.to}`);
    if (opts.msgBytes > conn.maxMessageSize) {
      throw new ConfigError('invalid raw send', [
        `msgBytes ${opts.msgBytes} > maxMessageSize ${conn.maxMessageSize}`,
      ]);
    }
    // One message buffer, re-sent: the data channel copies it on send. [msgBytes] bytes
    const buf = new Uint8Array(opts.msgBytes);
    for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
    return withTimeout(`raw send to ${opts.to}`, opts.timeoutMs, this.life.signal, async (signal) => {
      await sleepUntil(opts.startAt, signal);
      const startEpoch = epochNow();
      let sent = 0;
      let messages = 0;
      while (sent < opts.bytes) {
        const n = Math.min(opts.msgBytes, opts.bytes - sent);
        await conn.send(n === buf.length ? buf : buf.subarray(0, n), { signal });
        sent += n;
        messages++;
      }
      return { startEpoch, queuedEpoch: epochNow(), messages };
    });
  }

  async rawWait(opts: RawWaitOptions): Promise<RawWaitResult> {
    const c = this.rawEndpoint(opts.local).incoming.get(opts.from);
    if (!c || c.target === 0) throw new TransportError(`raw link ${opts.from} -> ${opts.local} is not armed`);
    return withTimeout(`raw receive from ${opts.from}`, opts.timeoutMs, this.life.signal, async (signal) => {
      if (c.endEpoch === null) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => {
            c.wake = null;
            reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
          };
          c.wake = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
      }
      const result = { endEpoch: c.endEpoch ?? epochNow(), bytes: c.bytes, messages: c.messages };
      c.target = 0;
      c.wake = null;
      return result;
    });
  }

  async meshSend(opts: MeshSendOptions): Promise<MeshSendResult> {
    const { mesh } = this.meshEndpoint(opts.local);
    // [bytes] uint8: one tensor, framed and chunked by the Mesh.
    const data = new Uint8Array(opts.bytes);
    for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
    const before = mesh.stats().perPeer[opts.to]?.bytesSent ?? 0;
    return withTimeout(`mesh send to ${opts.to}`, opts.timeoutMs, this.life.signal, async (signal) => {
      await sleepUntil(opts.startAt, signal);
      const startEpoch = epochNow();
      await mesh.sendTensor(
        opts.to,
        { ...meshKey(opts.tag), dtype: 'uint8', shape: [opts.bytes], data },
        { signal },
      );
      const queuedEpoch = epochNow();
      const wireBytes = (mesh.stats().perPeer[opts.to]?.bytesSent ?? 0) - before;
      return { startEpoch, queuedEpoch, wireBytes };
    });
  }

  async meshRecv(opts: MeshRecvOptions): Promise<MeshRecvResult> {
    const { mesh } = this.meshEndpoint(opts.local);
    return withTimeout(`mesh receive from ${opts.from}`, opts.timeoutMs, this.life.signal, async (signal) => {
      const msg = await mesh.recvTensor(opts.from, meshKey(opts.tag), { signal });
      const endEpoch = epochNow();
      if (msg.data.byteLength !== opts.bytes) {
        throw new TransportError(
          `expected ${opts.bytes} bytes from ${opts.from}, got ${msg.data.byteLength}`,
        );
      }
      return { endEpoch, bytes: msg.data.byteLength };
    });
  }

  async ping(opts: PingOptions): Promise<number[]> {
    const { mesh } = this.meshEndpoint(opts.local);
    return withTimeout(`ping ${opts.peer}`, opts.timeoutMs, this.life.signal, async (signal) => {
      const rtts: number[] = [];
      const data = new Uint8Array(4); // [4] uint8
      for (let k = 0; k < opts.count; k++) {
        const key = meshKey(opts.tag + k);
        const t0 = performance.now();
        const back = mesh.recvTensor(opts.peer, key, { signal });
        await mesh.sendTensor(opts.peer, { ...key, dtype: 'uint8', shape: [4], data }, { signal });
        await back;
        rtts.push(performance.now() - t0);
      }
      return rtts;
    });
  }

  async pong(opts: PingOptions): Promise<void> {
    const { mesh } = this.meshEndpoint(opts.local);
    await withTimeout(`pong ${opts.peer}`, opts.timeoutMs, this.life.signal, async (signal) => {
      for (let k = 0; k < opts.count; k++) {
        const msg = await mesh.recvTensor(opts.peer, meshKey(opts.tag + k), { signal });
        await mesh.sendTensor(opts.peer, msg, { signal });
      }
    });
  }

  async allReduce(opts: AllReduceOptions): Promise<AllReduceResult> {
    const { mesh, tracer } = this.meshEndpoint(opts.local);
    const rank = opts.group.indexOf(mesh.localId);
    if (rank < 0) throw new ConfigError('invalid all-reduce', [`group does not include ${mesh.localId}`]);
    let data = this.buffers.get(opts.sizeElems);
    if (!data) {
      data = new Float32Array(opts.sizeElems);
      this.buffers.set(opts.sizeElems, data);
    }
    fillRank(data, rank);
    const buffer = data;
    return withTimeout(`all-reduce step ${opts.step}`, opts.timeoutMs, this.life.signal, async (signal) => {
      await sleepUntil(opts.startAt, signal);
      const startEpoch = epochNow();
      const t0 = performance.now();
      tracer?.arm();
      let stats: AllReduceStats;
      let events: TraceEvent[] = [];
      try {
        stats = await ringAllReduce(mesh, opts.group, buffer, {
          runId: opts.runId,
          step: opts.step,
          bucketElems: opts.bucketElems,
          ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
          signal,
        });
      } finally {
        events = tracer?.disarm() ?? [];
      }
      const t1 = performance.now();
      const trace = tracer ? summarizeTrace(events, t0, t1) : undefined;
      const endEpoch = epochNow();
      return {
        startEpoch,
        endEpoch,
        stats,
        mismatches: countMismatches(buffer, opts.group.length),
        ...(trace ? { trace } : {}),
      };
    });
  }

  async memoryAllReduce(opts: MemoryAllReduceOptions): Promise<MemoryAllReduceResult> {
    const network = createMemoryNetwork();
    const ids = Array.from({ length: opts.n }, (_, r) => `mem-${r}`);
    const transports = ids.map((id) => memoryTransport(network, id));
    const meshes = transports.map((t) => createMesh(t));
    try {
      return await withTimeout('memory all-reduce', opts.timeoutMs, this.life.signal, async (signal) => {
        // One [sizeElems] float32 buffer per in-page rank.
        const buffers = ids.map((_, r) => fillRank(new Float32Array(opts.sizeElems), r));
        await Promise.all(meshes.map((m, r) => m.connect(ids[(r + 1) % opts.n] ?? '', { signal })));
        const t0 = performance.now();
        await Promise.all(
          meshes.map((m, r) =>
            ringAllReduce(m, ids, buffers[r] ?? new Float32Array(0), {
              runId: 0,
              step: 0,
              bucketElems: opts.bucketElems,
              ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
              signal,
            }),
          ),
        );
        const ms = performance.now() - t0;
        const mismatches = buffers.reduce((sum, b) => sum + countMismatches(b, opts.n), 0);
        return { ms, mismatches };
      });
    } finally {
      await Promise.all(meshes.map((m) => m.close()));
      await Promise.all(transports.map((t) => t.close()));
    }
  }

  async coordinatorOpen(opts: CoordinatorOpenOptions): Promise<{ peerId: string }> {
    const cfg = this.config;
    if (!cfg) throw new TransportError('init has not run');
    if (this.host) throw new ConfigError('coordinatorOpen', ['a coordinator is already open in this tab']);
    const peerId = coordinatorPeerId(opts.room);
    const webrtc = await withTimeout(`register ${peerId}`, opts.timeoutMs, this.life.signal, (signal) =>
      peerjsTransport({ id: peerId, ...cfg.signal, iceServers: cfg.iceServers, signal }),
    );
    const transport = opts.tabLinks === true ? withTabLinks(webrtc) : webrtc;
    const mesh = createMesh(transport);
    this.host = { coordinator: createCoordinator({ mesh, room: opts.room }), mesh, transport };
    log(`coordinator of room ${opts.room} open as ${peerId}`);
    return { peerId };
  }

  async coordinatorWait(opts: CoordinatorWaitOptions): Promise<number> {
    const { coordinator } = this.hosted();
    const idle = (): number =>
      coordinator.view().peers.filter((p) => p.state === 'idle' && p.device !== null).length;
    return withTimeout(`waiting for ${opts.workers} workers`, opts.timeoutMs, this.life.signal, (signal) => {
      if (idle() >= opts.workers) return Promise.resolve(idle());
      return new Promise<number>((resolve, reject) => {
        const onAbort = (): void => {
          off();
          reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
        };
        const off = coordinator.subscribe(() => {
          if (idle() < opts.workers) return;
          off();
          signal.removeEventListener('abort', onAbort);
          resolve(idle());
        });
        signal.addEventListener('abort', onAbort, { once: true });
      });
    });
  }

  async coordinatorRun(opts: CoordinatorRunOptions): Promise<CoordinatorRunResult> {
    const { coordinator } = this.hosted();
    const off = coordinator.onEvent((e) => {
      if (e.type === 'progress' && opts.progress !== false) console.info(`${PROGRESS_MARKER} ${e.step}`);
    });
    try {
      return await withTimeout('hosted run', opts.timeoutMs, this.life.signal, async (signal) => {
        const report = await coordinator.run(opts.config, { signal, waitMs: opts.waitMs });
        const { steps, evals } = coordinator.view().run;
        const trace = opts.trace === false ? null : coordinator.trace();
        return { report, trace, timeline: { steps, evals } };
      });
    } finally {
      off();
    }
  }

  async close(): Promise<void> {
    this.life.abort(new TransportError('benchmark page closed'));
    const closing: Promise<void>[] = [];
    const host = this.host;
    this.host = null;
    if (host) {
      closing.push(
        host.coordinator
          .dispose()
          .then(() => host.mesh.close())
          .then(() => host.transport.close()),
      );
    }
    for (const ep of this.raws.values()) {
      ep.unsub();
      for (const c of ep.incoming.values()) c.unsub();
      closing.push(ep.transport.close());
    }
    for (const ep of this.meshes.values()) closing.push(ep.mesh.close().then(() => ep.transport.close()));
    this.raws.clear();
    this.meshes.clear();
    this.buffers.clear();
    await Promise.allSettled(closing);
  }

  private hosted(): HostedCoordinator {
    if (!this.host) throw new TransportError('no coordinator open in this tab (coordinatorOpen first)');
    return this.host;
  }

  private rawEndpoint(id: string): RawEndpoint {
    const ep = this.raws.get(id);
    if (!ep) throw new TransportError(`no raw transport ${id} in this tab`);
    return ep;
  }

  private meshEndpoint(id: string): MeshEndpoint {
    const ep = this.meshes.get(id);
    if (!ep) throw new TransportError(`no mesh transport ${id} in this tab`);
    return ep;
  }
}

/** Counts the bytes of an accepted raw link (a newer link from the same peer replaces the old). */
function acceptRaw(ep: RawEndpoint, conn: Connection): void {
  ep.incoming.get(conn.remoteId)?.unsub();
  const c: RawCounter = {
    conn,
    bytes: 0,
    messages: 0,
    target: 0,
    endEpoch: null,
    wake: null,
    unsub: () => undefined,
  };
  c.unsub = conn.onMessage((data) => {
    c.bytes += data.byteLength;
    c.messages++;
    if (c.target > 0 && c.endEpoch === null && c.bytes >= c.target) {
      c.endEpoch = epochNow();
      c.wake?.();
    }
  });
  ep.incoming.set(conn.remoteId, c);
}

function meshKey(tag: number): TensorKey {
  return { runId: 0, step: 0, microBatch: null, tag };
}

/** Elements of an all-reduced buffer that differ from expectedSum (exact: small halves sum exactly). */
function countMismatches(data: Float32Array, n: number): number {
  let bad = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== expectedSum(i, n)) bad++;
  return bad;
}

window.peertrainBench = new BenchPage();
log('peertrain bench page loaded');
