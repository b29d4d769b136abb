// The compute engine in a thread of its own. On the page's thread a step's kernels (synchronous
// wasm) hold the event loop: the links' messages wait until the step ends, so an exchange "in
// flight" (overlapped all-reduce buckets, DiLoCo's overlapped outer step) only moves between
// steps. With the engine in a dedicated Worker the page's thread stays free for the links while the
// thread computes, which is what overlapping communication with computation needs.
//
// threadedCompute is a Compute whose every call goes to the thread (compute-thread-host.ts serves
// it) and comes back as a promise: the same values, bit for bit (the same engine on the same
// inputs). Abort signals cancel on both sides; the thread's errors keep their names.
import { AbortError } from '@peertrain/base';
import type { DeviceInfo, LayerCost, StageRange } from '@peertrain/protocol';
import type {
  Compute,
  DeviceSteps,
  EngineMemory,
  PrepareRun,
  Ran,
  StageSession,
  StageStepOutcome,
  TrainSession,
} from './compute.ts';
import { COMPUTE_HANDLE, fromEpoch } from './compute-thread-wire.ts';
import type {
  FromThread,
  PreparedSession,
  ThreadError,
  ThreadInit,
  ToThread,
} from './compute-thread-wire.ts';

/** The parts of a Worker (or a MessagePort) the page uses. */
export interface ThreadPort {
  postMessage(message: ToThread, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
}

/** The thread died or could not start its engine: every call from then on fails with it. */
export class ComputeThreadError extends Error {
  override readonly name = 'ComputeThreadError';
}

type HookMsg = Extract<FromThread, { t: 'hook' }>;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onHook?: (msg: HookMsg) => void;
}

/** An Error with the thread's name and message (AbortError as base's own class). */
function fromThread(e: ThreadError): Error {
  const err = e.name === 'AbortError' ? new AbortError(e.message) : new Error(e.message);
  if (err.name !== e.name) Object.defineProperty(err, 'name', { value: e.name });
  if (e.stack) err.stack = e.stack;
  return err;
}

class ThreadClient {
  readonly #port: ThreadPort;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #nextHandle = COMPUTE_HANDLE + 1;
  #dead: Error | null = null;
  memory: EngineMemory = { numBytes: 0, numTensors: 0 };
  readonly #onMessage = (e: MessageEvent): void => this.#receive(e.data as FromThread);
  #onReady: ((msg: Extract<FromThread, { t: 'ready' | 'failed' }>) => void) | null = null;

  constructor(port: ThreadPort) {
    this.#port = port;
    port.addEventListener('message', this.#onMessage);
  }

  start(init: ThreadInit, signal: AbortSignal | undefined): Promise<DeviceInfo> {
    return new Promise<DeviceInfo>((resolve, reject) => {
      const onAbort = (): void => reject(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#onReady = (msg) => {
        this.#onReady = null;
        signal?.removeEventListener('abort', onAbort);
        if (msg.t === 'ready') {
          this.memory = msg.memory;
          resolve(msg.device);
        } else reject(fromThread(msg.error));
      };
      this.#port.postMessage({ t: 'init', init });
    });
  }

  handle(): number {
    return this.#nextHandle++;
  }

  call<T>(
    target: number,
    method: string,
    args: unknown[],
    opts: {
      signal?: AbortSignal | undefined;
      handle?: number;
      onHook?: (msg: HookMsg) => void;
      /** Buffers in `args` handed to the thread (detached here) rather than copied. */
      transfer?: Transferable[];
    } = {},
  ): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pending.delete(id);
        this.#port.postMessage({ t: 'abort', id });
        reject(signal!.reason as Error);
      };
      const settle =
        <V>(f: (v: V) => void) =>
        (v: V): void => {
          signal?.removeEventListener('abort', onAbort);
          f(v);
        };
      this.#pending.set(id, {
        resolve: settle((v) => resolve(v as T)),
        reject: settle(reject),
        ...(opts.onHook ? { onHook: opts.onHook } : {}),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#port.postMessage(
        {
          t: 'call',
          id,
          target,
          method,
          args,
          ...(opts.handle !== undefined ? { handle: opts.handle } : {}),
        },
        opts.transfer ?? [],
      );
    });
  }

  post(target: number, method: string, args: unknown[], handle?: number): void {
    if (this.#dead) return;
    this.#port.postMessage({ t: 'post', target, method, args, ...(handle !== undefined ? { handle } : {}) });
  }

  /** The thread is gone (it crashed, or the page ended it): every pending and later call fails. */
  fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
    this.#onReady?.({ t: 'failed', error: { name: err.name, message: err.message } });
  }

  close(): void {
    this.#port.removeEventListener('message', this.#onMessage);
    this.fail(new ComputeThreadError('the compute thread was closed'));
  }

  #receive(msg: FromThread): void {
    switch (msg.t) {
      case 'ready':
      case 'failed':
        this.#onReady?.(msg);
        return;
      case 'hook':
        this.#pending.get(msg.id)?.onHook?.(msg);
        return;
      case 'done':
      case 'error': {
        this.memory = msg.memory;
        const p = this.#pending.get(msg.id);
        if (!p) return; // cancelled here already
        this.#pending.delete(msg.id);
        if (msg.t === 'done') p.resolve(msg.value);
        else p.reject(fromThread(msg.error));
        return;
      }
    }
  }
}

export interface ThreadedComputeOptions {
  /** Ends the thread (Worker.terminate); called by dispose, and when the start fails or is aborted. */
  terminate?: () => void;
  signal?: AbortSignal;
}

/**
 * A Compute served by the thread at the other end of `port`, once its engine is up (the backend
 * probe runs there). `fail` lets the page report the thread's own death (a Worker's error event).
 */
export async function threadedCompute(
  port: ThreadPort,
  init: ThreadInit,
  opts: ThreadedComputeOptions = {},
): Promise<Compute & { fail(err: Error): void }> {
  const client = new ThreadClient(port);
  const end = (): void => {
    client.close();
    opts.terminate?.();
  };
  let device: DeviceInfo;
  try {
    device = await client.start(init, opts.signal);
  } catch (err) {
    end();
    throw err;
  }
  return {
    device: { ...device, computeThread: true },
    async prepare(run: PrepareRun, o: { signal?: AbortSignal }): Promise<TrainSession> {
      const handle = client.handle();
      const p = await client.call<PreparedSession>(COMPUTE_HANDLE, 'prepare', [run], {
        signal: o.signal,
        handle,
      });
      return sessionProxy(client, handle, p);
    },
    profile: (config, o) =>
      client.call<LayerCost[]>(COMPUTE_HANDLE, 'profile', [config], { signal: o.signal }),
    memory: () => client.memory,
    dispose() {
      client.post(COMPUTE_HANDLE, 'dispose', []);
      end();
    },
    fail: (err) => client.fail(err),
  };
}

/**
 * A step's gradients call moves two [P] buffers, parameters in and gradients out, each way by
 * transfer (no structured clone): the page copies the parameters into a buffer of this pool, the
 * thread's engine writes the gradients straight into the other, and both come back to the pool.
 * Cloned, the two crossings cost about 1.2 ms of a 3.4 ms MLP step here (1 tab, batch 96).
 */
class BufferPool {
  readonly #free: ArrayBuffer[] = [];
  constructor(readonly bytes: number) {}
  take(): ArrayBuffer {
    return this.#free.pop() ?? new ArrayBuffer(this.bytes);
  }
  give(...buffers: ArrayBufferLike[]): void {
    for (const b of buffers)
      if (b instanceof ArrayBuffer && b.byteLength === this.bytes && this.#free.length < 4)
        this.#free.push(b);
  }
}

/** The thread's [start, end] (epochNow) of a computation, on this thread's clock. */
function ranOf([start, end]: readonly [number, number]): Ran {
  return { startMs: fromEpoch(start), endMs: fromEpoch(end) };
}

function sessionProxy(client: ThreadClient, handle: number, p: PreparedSession): TrainSession {
  const initParams = p.initParams;
  const pool = new BufferPool(p.paramCount * Float32Array.BYTES_PER_ELEMENT);
  const rangeOf = (range: StageRange): { offset: number; count: number } => {
    const r = p.ranges[`${range.first}:${range.end}`];
    if (!r) throw new RangeError(`layers [${range.first}, ${range.end}) are not a range of this model`);
    return r;
  };
  return {
    paramCount: p.paramCount,
    layerCount: p.layerCount,
    paramShapes: p.paramShapes,
    initParams: () => initParams.slice(),
    async gradients(params, step, o) {
      const out = o.out ?? new Float32Array(p.paramCount);
      const { hooks } = o;
      const onHook = hooks
        ? (msg: HookMsg): void => {
            const at = fromEpoch(msg.at);
            if (!msg.grads) return hooks.layerStart?.(msg.layer, at);
            const { offset, values } = msg.grads;
            out.set(values, offset);
            hooks.layerGrads(msg.layer, offset, out.subarray(offset, offset + values.length), at);
          }
        : undefined;
      const sent =
        params.length === p.paramCount ? new Float32Array(pool.take()) : new Float32Array(params.length);
      sent.set(params);
      const scratch = pool.take();
      const r = await client.call<{
        loss: number;
        params: Float32Array;
        grads: Float32Array;
        ran: [number, number];
      }>(handle, 'gradients', [sent, step, hooks !== undefined, scratch], {
        signal: o.signal,
        ...(onHook ? { onHook } : {}),
        transfer: [sent.buffer, scratch],
      });
      // With hooks every layer's part is in `out` already (the hooks came first, in order), and the
      // method may have reduced them in place since: writing the local gradients again would undo it.
      if (!hooks) out.set(r.grads);
      pool.give(r.params.buffer, r.grads.buffer);
      return { loss: r.loss, grads: out, ran: ranOf(r.ran) };
    },
    ...(p.gradientsOf
      ? {
          gradientsOf: async (
            params: Float32Array,
            step: number,
            shard: PrepareRun['shard'],
            o: { signal?: AbortSignal; out?: Float32Array },
          ) => {
            const r = await client.call<{ loss: number; grads: Float32Array; ran: [number, number] }>(
              handle,
              'gradientsOf',
              [params, step, shard],
              { signal: o.signal },
            );
            o.out?.set(r.grads);
            return { loss: r.loss, grads: o.out ?? r.grads, ran: ranOf(r.ran) };
          },
        }
      : {}),
    ...(p.deviceSteps
      ? {
          deviceSteps: (params: Float32Array): DeviceSteps => {
            const h = client.handle();
            client.post(handle, 'deviceSteps', [params], h);
            return deviceStepsProxy(client, h, p.paramCount);
          },
        }
      : {}),
    evaluate: (params, o) => client.call(handle, 'evaluate', [params, o.part], { signal: o.signal }),
    reference: (params, o) => client.call(handle, 'reference', [params], { signal: o.signal }),
    stage(range) {
      const r = rangeOf(range);
      const h = client.handle();
      client.post(handle, 'stage', [range], h);
      return stageProxy(client, h, range, r, p.layerCount);
    },
    paramRange: rangeOf,
    dispose: () => client.post(handle, 'dispose', []),
  };
}

function stageProxy(
  client: ThreadClient,
  h: number,
  range: StageRange,
  r: { offset: number; count: number },
  layers: number,
): StageSession {
  // The last pass's interval on the thread (lastRan), on this thread's clock.
  let last: Ran | undefined;
  const timed = async (method: string, args: unknown[]): Promise<Float32Array | null> => {
    const r = await client.call<{ data: Float32Array | null; ran: [number, number] }>(h, method, args);
    last = ranOf(r.ran);
    return r.data;
  };
  const pass =
    (method: 'forward' | 'backward' | 'backwardInput') =>
    (mb: number, input: Float32Array | null): Promise<Float32Array | null> =>
      timed(method, [mb, input]);
  return {
    first: range.first,
    end: range.end,
    isFirst: range.first === 0,
    isLast: range.end === layers,
    paramOffset: r.offset,
    paramCount: r.count,
    beginStep: (step, params, o) => client.call(h, 'beginStep', [step, params], { signal: o.signal }),
    forward: pass('forward'),
    backward: pass('backward'),
    backwardInput: pass('backwardInput'),
    backwardWeight: async (mb) => void (await timed('backwardWeight', [mb])),
    async endStep(grads) {
      const res = await client.call<{ outcome: StageStepOutcome; grads: Float32Array }>(h, 'endStep', []);
      grads.set(res.grads);
      return res.outcome;
    },
    reset: () => client.post(h, 'reset', []),
    lastRan: () => last,
  };
}

function deviceStepsProxy(client: ThreadClient, h: number, paramCount: number): DeviceSteps {
  const read = (method: 'readGrads' | 'readParams') => async (out: Float32Array) => {
    out.set(await client.call<Float32Array>(h, method, [paramCount]));
  };
  return {
    compute: (step, o) => client.call(h, 'compute', [step], { signal: o.signal }),
    readLoss: () => client.call(h, 'readLoss', []),
    readGrads: read('readGrads'),
    apply: (mean) => client.post(h, 'apply', [mean]),
    readParams: read('readParams'),
    dispose: () => client.post(h, 'dispose', []),
  };
}
