// The thread side of a compute thread (compute-thread.ts is the page's side): serves one Compute
// (engineCompute, built on the first message) to the page over `port`. Runs in a dedicated Worker
// (apps/worker/src/compute.worker.ts), or anywhere a MessagePort reaches (the unit tests).
import { AbortError, asError } from '@peertrain/base';
import type { Shard, StageRange } from '@peertrain/protocol';
import type { Compute, DeviceSteps, EngineMemory, StageSession, TrainSession } from './compute.ts';
import { COMPUTE_HANDLE, epochNow, toThreadError } from './compute-thread-wire.ts';
import type { FromThread, PreparedSession, ThreadInit, ToThread } from './compute-thread-wire.ts';

/** The parts of a Worker's global scope or a MessagePort the thread uses. */
export interface HostPort {
  postMessage(message: FromThread, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
}

type Held = Compute | TrainSession | StageSession | DeviceSteps;

type Outcome = { value: unknown; transfer?: Transferable[] };

/** Serves `make`'s Compute on `port` until the page disposes it. */
export function serveCompute(
  port: HostPort,
  make: (init: ThreadInit) => Promise<Compute>,
  memory: () => EngineMemory,
): void {
  const host = new ComputeHost((msg, transfer = []) => port.postMessage(msg, transfer), make, memory);
  port.addEventListener('message', (e: MessageEvent) => host.receive(e.data as ToThread));
}

class ComputeHost {
  readonly #send: (msg: FromThread, transfer?: Transferable[]) => void;
  readonly #make: (init: ThreadInit) => Promise<Compute>;
  readonly #memory: () => EngineMemory;
  readonly #held = new Map<number, Held>();
  /** A posted call that threw: the next call on its handle fails with it. */
  readonly #faults = new Map<number, Error>();
  /** The handles a session made (its stages, its device steps), dropped with it. */
  readonly #children = new Map<number, number[]>();
  readonly #calls = new Map<number, AbortController>();
  #started = false;

  constructor(
    send: (msg: FromThread, transfer?: Transferable[]) => void,
    make: (init: ThreadInit) => Promise<Compute>,
    memory: () => EngineMemory,
  ) {
    this.#send = send;
    this.#make = make;
    this.#memory = memory;
  }

  receive(msg: ToThread): void {
    switch (msg.t) {
      case 'init':
        if (this.#started) return;
        this.#started = true;
        this.#make(msg.init).then(
          (compute) => {
            this.#held.set(COMPUTE_HANDLE, compute);
            this.#send({ t: 'ready', device: compute.device, memory: this.#memory() });
          },
          (err: unknown) => this.#send({ t: 'failed', error: toThreadError(err) }),
        );
        return;
      case 'call':
        this.#startCall(msg);
        return;
      case 'post':
        try {
          this.#post(msg.target, msg.method, msg.args, msg.handle);
        } catch (err) {
          this.#faults.set(msg.handle ?? msg.target, asError(err));
        }
        return;
      case 'abort':
        this.#calls.get(msg.id)?.abort(new AbortError('cancelled by the page'));
        return;
    }
  }

  /** Starts the call now, in message order (a posted call before it has taken effect), and replies. */
  #startCall(msg: Extract<ToThread, { t: 'call' }>): void {
    const abort = new AbortController();
    this.#calls.set(msg.id, abort);
    let started: Promise<Outcome>;
    try {
      started = this.#call(msg, abort.signal);
    } catch (err) {
      started = Promise.reject(asError(err));
    }
    started
      .then(
        ({ value, transfer }) =>
          this.#send({ t: 'done', id: msg.id, value, memory: this.#memory() }, transfer),
        (err: unknown) =>
          this.#send({ t: 'error', id: msg.id, error: toThreadError(err), memory: this.#memory() }),
      )
      .finally(() => this.#calls.delete(msg.id));
  }

  #get<T extends Held>(handle: number): T {
    const fault = this.#faults.get(handle);
    if (fault !== undefined) {
      this.#faults.delete(handle);
      throw fault;
    }
    const obj = this.#held.get(handle);
    if (!obj) throw new Error(`compute thread: no object ${handle} (disposed?)`);
    return obj as T;
  }

  #drop(handle: number): void {
    this.#held.delete(handle);
    this.#faults.delete(handle);
    for (const c of this.#children.get(handle) ?? []) this.#drop(c);
    this.#children.delete(handle);
  }

  #adopt(parent: number, handle: number | undefined, obj: Held): void {
    if (handle === undefined) throw new Error('compute thread: a new object without a handle');
    this.#held.set(handle, obj);
    this.#children.set(parent, [...(this.#children.get(parent) ?? []), handle]);
  }

  /** A call with a reply: its value, and the buffers that are transferred rather than copied. */
  #call(msg: Extract<ToThread, { t: 'call' }>, signal: AbortSignal): Promise<Outcome> {
    const { target, method, args } = msg;
    switch (method) {
      case 'prepare':
      case 'profile':
        return this.#computeCall(msg, signal);
      case 'gradients':
        return this.#gradients(target, msg.id, args as [Float32Array, number, boolean, ArrayBuffer], signal);
      case 'gradientsOf':
      case 'evaluate':
      case 'reference':
        return this.#sessionCall(target, method, args, signal);
      case 'beginStep':
      case 'forward':
      case 'backward':
      case 'backwardInput':
      case 'backwardWeight':
      case 'endStep':
        return this.#stageCall(this.#get<StageSession>(target), method, args, signal);
      case 'compute':
      case 'readLoss':
      case 'readGrads':
      case 'readParams':
        return this.#deviceCall(this.#get<DeviceSteps>(target), method, args, signal);
      default:
        throw new Error(`compute thread: no method ${method}`);
    }
  }

  async #computeCall(msg: Extract<ToThread, { t: 'call' }>, signal: AbortSignal): Promise<Outcome> {
    const compute = this.#get<Compute>(msg.target);
    if (msg.method === 'profile')
      return { value: await compute.profile(msg.args[0] as Parameters<Compute['profile']>[0], { signal }) };
    const session = await compute.prepare(msg.args[0] as Parameters<Compute['prepare']>[0], { signal });
    if (msg.handle === undefined) throw new Error('compute thread: prepare without a handle');
    this.#held.set(msg.handle, session);
    return { value: prepared(session) };
  }

  /** Gradients into the page's `scratch` buffer; it and the parameters go back by transfer. */
  async #gradients(
    target: number,
    id: number,
    [params, step, hooked, scratch]: [Float32Array, number, boolean, ArrayBuffer],
    signal: AbortSignal,
  ): Promise<Outcome> {
    const session = this.#get<TrainSession>(target);
    const out = new Float32Array(scratch);
    const send = this.#send;
    const hooks = hooked
      ? {
          layerStart: (layer: number) => send({ t: 'hook', id, layer, at: epochNow() }),
          layerGrads: (layer: number, offset: number, grads: Float32Array) => {
            const at = epochNow();
            const values = grads.slice(); // `out` itself goes back with the reply
            send({ t: 'hook', id, layer, grads: { offset, values }, at }, [values.buffer]);
          },
        }
      : undefined;
    const start = epochNow();
    const r = await session.gradients(params, step, { signal, out, ...(hooks ? { hooks } : {}) });
    const ran = [start, epochNow()];
    if (r.grads !== out) out.set(r.grads);
    return { value: { loss: r.loss, params, grads: out, ran }, transfer: [params.buffer, out.buffer] };
  }

  async #sessionCall(target: number, method: string, args: unknown[], signal: AbortSignal): Promise<Outcome> {
    const session = this.#get<TrainSession>(target);
    if (method === 'gradientsOf') {
      if (!session.gradientsOf) throw new Error('compute thread: this session has no gradientsOf');
      const [params, step, shard] = args as [Float32Array, number, Shard];
      const start = epochNow();
      const r = await session.gradientsOf(params, step, shard, { signal });
      return { value: { loss: r.loss, grads: r.grads, ran: [start, epochNow()] } };
    }
    if (method === 'evaluate') {
      const [params, part] = args as [Float32Array, { index: number; of: number } | undefined];
      return { value: await session.evaluate(params, { signal, ...(part ? { part } : {}) }) };
    }
    return { value: await session.reference(args[0] as Float32Array, { signal }) };
  }

  async #stageCall(
    stage: StageSession,
    method: string,
    args: unknown[],
    signal: AbortSignal,
  ): Promise<Outcome> {
    const [mb, input] = args as [number, Float32Array | null];
    // A pass's value comes with when it ran here (epochNow), for the page's compute spans.
    const timed = async (run: () => Promise<Float32Array | null | void>): Promise<Outcome> => {
      const start = epochNow();
      const data = await run();
      return { value: { data: data ?? null, ran: [start, epochNow()] } };
    };
    // Activations are copied, not transferred: the stage may hand out a view of a buffer it keeps.
    switch (method) {
      case 'beginStep':
        return { value: await stage.beginStep(args[0] as number, args[1] as Float32Array, { signal }) };
      case 'forward':
        return timed(() => stage.forward(mb, input));
      case 'backward':
        return timed(() => stage.backward(mb, input));
      case 'backwardInput':
        if (!stage.backwardInput) throw new Error('compute thread: this stage has no backwardInput');
        return timed(() => stage.backwardInput!(mb, input));
      case 'backwardWeight':
        if (!stage.backwardWeight) throw new Error('compute thread: this stage has no backwardWeight');
        return timed(() => stage.backwardWeight!(mb));
      default: {
        const grads = new Float32Array(stage.paramCount);
        const outcome = await stage.endStep(grads);
        return { value: { outcome, grads }, transfer: [grads.buffer] };
      }
    }
  }

  async #deviceCall(
    steps: DeviceSteps,
    method: string,
    args: unknown[],
    signal: AbortSignal,
  ): Promise<Outcome> {
    if (method === 'compute') return { value: await steps.compute(args[0] as number, { signal }) };
    if (method === 'readLoss') return { value: await steps.readLoss() };
    const out = new Float32Array(args[0] as number);
    if (method === 'readGrads') await steps.readGrads(out);
    else await steps.readParams(out);
    return { value: out, transfer: [out.buffer] };
  }

  /** A call without a reply. */
  #post(target: number, method: string, args: unknown[], handle: number | undefined): void {
    switch (method) {
      case 'stage':
        this.#adopt(target, handle, this.#get<TrainSession>(target).stage(args[0] as StageRange));
        return;
      case 'deviceSteps': {
        const session = this.#get<TrainSession>(target);
        if (!session.deviceSteps) throw new Error('compute thread: this session has no deviceSteps');
        this.#adopt(target, handle, session.deviceSteps(args[0] as Float32Array));
        return;
      }
      case 'reset':
        this.#get<StageSession>(target).reset();
        return;
      case 'apply':
        this.#get<DeviceSteps>(target).apply(args[0] as Float32Array | undefined);
        return;
      case 'dispose': {
        const obj = this.#held.get(target);
        this.#drop(target);
        if (obj && 'dispose' in obj) obj.dispose(); // a stage goes with its session
        return;
      }
      default:
        throw new Error(`compute thread: no method ${method}`);
    }
  }
}

/** The synchronous parts of `session`, for the page's proxy. */
function prepared(session: TrainSession): PreparedSession {
  const layers = session.layerCount ?? 0;
  const ranges: PreparedSession['ranges'] = {};
  for (let first = 0; first < layers; first++)
    for (let end = first + 1; end <= layers; end++)
      ranges[`${first}:${end}`] = session.paramRange({ first, end });
  return {
    paramCount: session.paramCount,
    paramShapes: session.paramShapes.map((s) => [...s]),
    initParams: session.initParams(),
    layerCount: layers,
    ranges,
    gradientsOf: session.gradientsOf !== undefined,
    deviceSteps: session.deviceSteps !== undefined,
  };
}
