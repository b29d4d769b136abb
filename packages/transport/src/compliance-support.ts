// What the transport compliance cases (compliance.ts) share: checks that throw ComplianceError,
// deterministic payloads, and waits bounded by a timeout and the case's signal. Framework-agnostic,
// as the cases are: a browser page runs them as they are.
import { abortable, sleep } from '@peertrain/base';
import { createMesh } from './mesh.ts';
import type { Connection, DType, Mesh, TensorKey, TensorMessage, Transport, Unsubscribe } from './types.ts';

export interface TransportPair {
  a: Transport;
  b: Transport;
  /** Closes both transports and anything else the pair set up. */
  cleanup(): Promise<void>;
}

export class ComplianceError extends Error {
  override readonly name = 'ComplianceError';
}

export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ComplianceError(what);
}

export function isNamed(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

export async function expectRejects(p: Promise<unknown>, names: string[], what: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    check(isNamed(err, ...names), `${what}: expected ${names.join(' or ')}, got ${describe(err)}`);
    return err as Error;
  }
  throw new ComplianceError(`${what}: expected a rejection (${names.join(' or ')})`);
}

export function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Deterministic bytes: byte i of stream `seed` (cheap, position-dependent, never all zero). */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Waits for the first event a subscription reports, with a timeout and the case's signal. */
export function nextEvent<T>(
  on: (emit: (value: T) => void) => Unsubscribe,
  what: string,
  ms: number,
  signal: AbortSignal,
): Promise<T> {
  let unsubscribe: Unsubscribe = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = new Promise<T>((resolve, reject) => {
    let done = false;
    unsubscribe = on((v) => {
      if (done) return;
      done = true;
      resolve(v);
    });
    timer = setTimeout(() => reject(new ComplianceError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return abortable(p, signal).finally(() => {
    clearTimeout(timer);
    unsubscribe();
  });
}

/** Resolves in a later task (a message, not a timer: no 4 ms clamp), after pending events ran. */
export function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** Resolves once `cond()` holds (checked every 5 ms), else ComplianceError after `ms`. */
export async function until(
  cond: () => boolean,
  what: string,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline)
      throw new ComplianceError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5, signal);
  }
}

/** Collects the next `n` messages of a connection. */
export function collect(conn: Connection, n: number, ms: number, signal: AbortSignal): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return nextEvent<Uint8Array[]>(
    (done) =>
      conn.onMessage((m) => {
        got.push(m);
        if (got.length === n) done(got);
      }),
    `${n} messages (got ${got.length})`,
    ms,
    signal,
  );
}

export async function connectPair(
  pair: TransportPair,
  ms: number,
  signal: AbortSignal,
): Promise<{ ab: Connection; ba: Connection }> {
  const incoming = nextEvent<Connection>(
    (done) =>
      pair.b.onConnection((c) => {
        if (c.remoteId === pair.a.localId) done(c);
      }),
    'the incoming connection',
    ms,
    signal,
  );
  const [ab, ba] = await Promise.all([pair.a.dial(pair.b.localId, { signal }), incoming]);
  return { ab, ba };
}

export async function connectMeshes(
  pair: TransportPair,
  ms: number,
  signal: AbortSignal,
): Promise<{ ma: Mesh; mb: Mesh; a: string; b: string }> {
  const ma = createMesh(pair.a);
  const mb = createMesh(pair.b);
  const a = pair.a.localId;
  const b = pair.b.localId;
  await ma.connect(b, { signal });
  await until(() => mb.isConnected(a), 'the mesh link at b', ms, signal);
  return { ma, mb, a, b };
}

export function makeTensor(dtype: DType, shape: number[], key: TensorKey, seed: number): TensorMessage {
  const bpe = { float32: 4, int32: 4, uint8: 1, float16: 2, int8: 1 }[dtype];
  const n = shape.reduce((x, y) => x * y, 1);
  return { ...key, dtype, shape, data: pattern(n * bpe, seed) };
}

export function checkTensor(got: TensorMessage, want: TensorMessage, what: string): void {
  check(got.dtype === want.dtype, `${what}: dtype ${got.dtype} != ${want.dtype}`);
  check(got.shape.join(',') === want.shape.join(','), `${what}: shape [${got.shape.join(',')}]`);
  check(
    got.runId === want.runId &&
      got.step === want.step &&
      got.microBatch === want.microBatch &&
      got.tag === want.tag,
    `${what}: key differs`,
  );
  check(
    sameBytes(got.data, want.data),
    `${what}: ${got.data.byteLength} bytes differ from the ${want.data.byteLength} sent`,
  );
}

export const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
