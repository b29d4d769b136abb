import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

/** What measureUdp saw over one host's UDP (both sockets on `host`). */
export interface UdpMeasurement {
  /** Median round trip of PINGS echoes, ms (each crosses the link twice). */
  rttMs: number;
  /** One-way loss of LOSS_DATAGRAMS small datagrams, percent. */
  lossPercent: number;
  /** Bits received per second while a sender blasts BLAST_BYTES datagrams for BLAST_MS (payload only). */
  throughputBitsPerSecond: number;
}

const PINGS = 30;
const LOSS_DATAGRAMS = 3000;
/** Sent 10 per 5 ms tick: at most 2000/s x 128 B = 2 Mbit/s on the wire, below the shaped rates tested. */
const LOSS_BURST = 10;
const BLAST_BYTES = 1200;
const BLAST_MS = 1500;
/** Datagrams handed to the socket and not yet sent (keeps the blast from queueing inside Node). */
const BLAST_WINDOW = 32;

async function bound(host: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => resolve());
  });
  return s;
}

/** Waits this long after the last send for stragglers: the added delay plus slack. */
function settleMs(rttMs: number): number {
  return Math.max(200, rttMs * 2 + 100);
}

/** The two sockets measured between: a sends, b receives (or echoes). */
interface Pair {
  a: Socket;
  b: Socket;
  host: string;
  signal: AbortSignal | undefined;
}

async function measureRtt({ a, b, host, signal }: Pair): Promise<number> {
  b.on('message', (m, r) => b.send(m, r.port, r.address));
  const rtts: number[] = [];
  const onReply = (m: Buffer): void => void rtts.push(performance.now() - m.readDoubleLE(0));
  a.on('message', onReply);
  for (let i = 0; i < PINGS; i++) {
    const buf = Buffer.alloc(8);
    buf.writeDoubleLE(performance.now());
    a.send(buf, b.address().port, host);
    await sleep(20, undefined, { signal });
  }
  await sleep(1000, undefined, { signal }); // up to 500 ms one-way delay still counts
  a.off('message', onReply);
  b.removeAllListeners('message');
  rtts.sort((x, y) => x - y);
  return rtts[rtts.length >> 1] ?? Infinity;
}

async function measureLoss({ a, b, host, signal }: Pair, wait: number): Promise<number> {
  let got = 0;
  const onMessage = (): void => void got++;
  b.on('message', onMessage);
  const payload = Buffer.alloc(100);
  for (let sent = 0; sent < LOSS_DATAGRAMS; sent += LOSS_BURST) {
    for (let i = 0; i < LOSS_BURST; i++) a.send(payload, b.address().port, host);
    await sleep(5, undefined, { signal });
  }
  await sleep(wait, undefined, { signal });
  b.off('message', onMessage);
  return (100 * (LOSS_DATAGRAMS - got)) / LOSS_DATAGRAMS;
}

async function measureThroughput({ a, b, host, signal }: Pair, wait: number): Promise<number> {
  let bytes = 0;
  let first = 0;
  let last = 0;
  const onMessage = (m: Buffer): void => {
    const now = performance.now();
    if (bytes === 0) first = now;
    else last = now;
    if (first !== now)
      bytes += m.length; // the first datagram opens the window, the rest fill it
    else bytes = 1;
  };
  b.on('message', onMessage);
  const payload = Buffer.alloc(BLAST_BYTES);
  const end = performance.now() + BLAST_MS;
  let inFlight = 0;
  while (performance.now() < end) {
    signal?.throwIfAborted();
    if (inFlight >= BLAST_WINDOW) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    inFlight++;
    a.send(payload, b.address().port, host, () => void inFlight--);
  }
  await sleep(wait, undefined, { signal });
  b.off('message', onMessage);
  return last > first ? ((bytes - 1) * 8 * 1000) / (last - first) : 0;
}

/**
 * Measures round trip, one-way loss and throughput of UDP between two sockets on `host` (e.g.
 * 10.213.0.1 inside the private namespace, where the peers' traffic runs): what `--link` changes.
 * Takes about 3 s plus the delays.
 */
export async function measureUdp(host: string, opts: { signal?: AbortSignal } = {}): Promise<UdpMeasurement> {
  const a = await bound(host);
  const b = await bound(host);
  try {
    const pair: Pair = { a, b, host, signal: opts.signal };
    const rttMs = await measureRtt(pair);
    const wait = settleMs(rttMs);
    const lossPercent = await measureLoss(pair, wait);
    const throughputBitsPerSecond = await measureThroughput(pair, wait);
    return { rttMs, lossPercent, throughputBitsPerSecond };
  } finally {
    a.close();
    b.close();
  }
}
