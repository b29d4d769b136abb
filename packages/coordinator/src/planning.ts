import { AbortError, deadline } from '@peertrain/base';
import {
  ConfigError,
  PROBE_TAG,
  modelPreset,
  parsePartition,
  parseRunConfig,
  probeKey,
  runShape,
  toWireError,
  zeroGatedOutput,
} from '@peertrain/protocol';
import type { LayerCost, RunConfig, RunConfigInput, ToCoordinator } from '@peertrain/protocol';
import { evaluatePartition, planStages } from '@peertrain/planner';
import type { StageDevice, StagePlan } from '@peertrain/planner';
import type { Hub } from './hub.ts';
import type { Membership, PeerRecord } from './membership.ts';
import type { PlanPreview } from './types.ts';
import { asError } from '@peertrain/base';
import { waitFor, wake } from './wait.ts';
import type { WaitScope, Waiter } from './wait.ts';

/*
 * Probing and planning: the bandwidth probe of each idle peer's link, layer profiles taken on a
 * pipeline's devices, and the stage plan (for a run, or a preview the Run form shows).
 */

/**
 * Link speed the planner assumes between stages, bytes/ms: a WebRTC data channel between two tabs
 * measured 18-30 MB/s on the development machine (npm run bench, raw one-way).
 */
const PLANNER_LINK_BYTES_PER_MS = 20_000;
/**
 * The share of a zero-gated output's elements the planner expects to be non-zero (a ReLU of a
 * zero-mean input: half); real activations are often sparser (the MNIST CNN's first ReLU crosses
 * at 0.3x of float32 with its gradient), which only makes such a cut cheaper still.
 */
const PLANNER_NONZERO_SHARE = 0.5;
/** Memory assumed for a tab that does not report navigator.deviceMemory, GiB. */
const DEFAULT_DEVICE_GIB = 4;
/**
 * Bandwidth probe: 256 KiB (a single data-channel message at most; a few ms on a LAN link, so
 * RTT/2 does not dominate), keyed by protocol's probeKey (runId 0, a tag no collective uses).
 */
export const DEFAULT_PROBE_BYTES = 256 * 1024;
const PROBE_TIMEOUT_MS = 10_000;

type ProbeAck = Extract<ToCoordinator, { type: 'probeAck' }>;

/**
 * Who waits for layer profiles: a run, or a plan preview (its ids negative so that they never meet
 * a run's). Profiles are only taken from the session's devices, and only for its id.
 */
export interface ProfileSession extends WaitScope {
  runId: number;
  profiles: Map<string, LayerCost[]>;
}

/** A run's cut of the model, with the layer profiles it was cut on. */
export interface PipelinePlan {
  plan: StagePlan;
  layers: LayerCost[];
}

/** What the planner needs from the profiles of replica 0's devices. */
type PlanInputs = Pick<PlanPreview, 'layers' | 'options'> & { devices: StageDevice[] };

export interface PlanningInit {
  hub: Hub;
  membership: Membership;
  probeBytes: number;
  readyTimeoutMs: number;
  /** The run in progress, if any (a preview is refused while one runs). */
  activeRunId(): number | null;
  disposed(): boolean;
}

/**
 * Interleaved runs cut the model into P * V chunks, chunk c on device c mod P: the devices V times
 * over, each copy with a V-th of the device's memory (the planner checks each chunk alone; its
 * predicted step treats the chunks as stages).
 */
export function chunkDevices(devices: readonly StageDevice[], chunks: number): StageDevice[] {
  if (chunks === 1) return [...devices];
  return Array.from({ length: chunks }, (_, k) =>
    devices.map((d) => ({ ...d, id: `${d.id} chunk ${k}`, memoryBytes: d.memoryBytes / chunks })),
  ).flat();
}

export class Planning {
  private probeCounter = 0;
  private readonly probeAcks = new Map<number, (ack: ProbeAck) => void>();
  private probePayload: Uint8Array | null = null;
  /** The plan preview in flight, with the peers it profiles. */
  private preview: (ProfileSession & { devices: ReadonlySet<string> }) | null = null;
  private planCounter = 0;

  constructor(private readonly init: PlanningInit) {}

  onProbeAck(msg: ProbeAck): void {
    this.probeAcks.get(msg.id)?.(msg);
  }

  /** Ends the preview in flight, if any. */
  abortPreview(reason: Error): void {
    this.preview?.abort.abort(reason);
  }

  /**
   * Measures coordinator -> peer bandwidth: a probe message, then probeBytes of uint8 on the same
   * ordered link; the peer acks once all of it arrived. bandwidth = bytes / (ack time - RTT/2).
   * Between runs only; a run that takes the peer aborts it. Failures are logged, never thrown.
   */
  async probeBandwidth(p: PeerRecord): Promise<void> {
    const { probeBytes, hub } = this.init;
    if (probeBytes <= 0 || p.probe || this.init.disposed()) return;
    const ctl = new AbortController();
    p.probe = ctl;
    const id = ++this.probeCounter;
    const signal = deadline(ctl.signal, PROBE_TIMEOUT_MS);
    const acked = this.ackOf(id, signal);
    acked.catch(() => {}); // awaited below; a send failure must not leave it unhandled
    try {
      this.probePayload ??= new Uint8Array(probeBytes);
      const t0 = hub.now();
      await hub.mesh.sendControl(
        p.peerId,
        { type: 'probe', id, bytes: probeBytes, tag: PROBE_TAG },
        { signal },
      );
      const data = this.probePayload;
      await hub.mesh.sendTensor(
        p.peerId,
        { ...probeKey(id), dtype: 'uint8', shape: [probeBytes], data },
        { signal },
      );
      const ack = await acked;
      if (ack.error) throw Object.assign(new Error(ack.error.message), { name: ack.error.name });
      // Floor at 0.1 ms: a probe can beat the RTT estimate on an idle loopback link.
      const ms = Math.max(hub.now() - t0 - (p.rttMs ?? 0) / 2, 0.1);
      p.bandwidthBytesPerSec = (ack.bytes / ms) * 1000;
      hub.changed();
    } catch (e) {
      if (!ctl.signal.aborted) hub.log(`bandwidth probe to ${p.peerId} failed: ${toWireError(e).message}`);
    } finally {
      if (p.probe === ctl) p.probe = null;
    }
  }

  private ackOf(id: number, signal: AbortSignal): Promise<ProbeAck> {
    return new Promise<ProbeAck>((resolve, reject) => {
      const onAbort = (): void => {
        this.probeAcks.delete(id);
        reject(asError(signal.reason));
      };
      this.probeAcks.set(id, (ack) => {
        this.probeAcks.delete(id);
        signal.removeEventListener('abort', onAbort);
        resolve(ack);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A plan preview's profile result or error; false when `msg` is not for the preview in flight. */
  onPreviewMessage(from: string, msg: ToCoordinator): boolean {
    const s = this.preview;
    if (!s || (msg.type !== 'profileResult' && msg.type !== 'error')) return false;
    if (msg.runId !== s.runId) return false;
    if (!s.devices.has(from)) return true;
    if (msg.type === 'error') {
      const err = new Error(`${from}: ${msg.error.message}`);
      err.name = msg.error.name;
      s.abort.abort(err);
      return true;
    }
    s.profiles.set(from, msg.layers);
    wake(s, from, msg);
    return true;
  }

  /**
   * Profiles the layers on each device of replica 0 (one at a time: profiles taken at once would
   * share the CPU) and turns the profiles into the planner's inputs.
   */
  private async profile(
    s: ProfileSession,
    config: RunConfig,
    devices: readonly PeerRecord[],
  ): Promise<PlanInputs> {
    const { hub, readyTimeoutMs } = this.init;
    hub.log(`profiling layers on ${devices.length} devices`);
    for (const d of devices) {
      hub.send(d.peerId, { type: 'profile', runId: s.runId, config });
      await waitFor(s, `profiling layers on ${d.peerId}`, readyTimeoutMs, () => s.profiles.has(d.peerId));
    }
    const profiles = devices.map((d) => s.profiles.get(d.peerId)!);
    const totals = profiles.map((ls) => ls.reduce((a, l) => a + l.costMs, 0));
    const fastest = totals.indexOf(Math.min(...totals));
    const layers = profiles[fastest]!;
    if (profiles.some((ls) => ls.length !== layers.length)) {
      throw new ConfigError('invalid pipeline', ['workers disagree on the number of layers']);
    }
    // A device's speed is what its own profile says: micro-batches per second through the whole model.
    const stageDevices = devices.map((d, i) => ({
      id: d.peerId,
      gflops: 1000 / Math.max(totals[i]!, 1e-3),
      memoryBytes: ((d.device?.deviceMemoryGiB ?? DEFAULT_DEVICE_GIB) * 2 ** 30) / 4,
    }));
    const options = {
      microBatches: config.microBatches,
      referenceGflops: stageDevices[fastest]!.gflops,
      bytesPerMs: PLANNER_LINK_BYTES_PER_MS,
    };
    return { layers: wireBytes(layers, config), devices: stageDevices, options };
  }

  /**
   * Cuts the model for a run: the planner for 'auto', else the user's ranges checked against the
   * devices' memory. Throws ConfigError or PlanError with the reason.
   */
  async planPipeline(
    s: ProfileSession,
    config: RunConfig,
    devices: readonly PeerRecord[],
  ): Promise<PipelinePlan> {
    const inputs = await this.profile(s, config, devices);
    const { layers, options } = inputs;
    const stageDevices = chunkDevices(inputs.devices, config.virtualStages);
    const plan =
      config.partition === 'auto'
        ? planStages(layers, stageDevices, options)
        : evaluatePartition(
            layers,
            stageDevices,
            parsePartition(config.partition, layers.length, stageDevices.length),
            options,
          );
    this.init.hub.log(
      `stages: ${plan.stages.map((st, i) => `${i}: layers ${st.first}-${st.end - 1}`).join(', ')}` +
        ` (predicted ${plan.predictedStepMs.toFixed(1)} ms per step)`,
    );
    return { plan, layers };
  }

  /** The plan `run(input)` would use now, profiled on the oldest idle peers (Coordinator.plan). */
  async plan(
    input: RunConfigInput,
    opts: { signal?: AbortSignal; waitMs?: number } = {},
  ): Promise<PlanPreview> {
    if (this.init.disposed()) throw new AbortError('coordinator disposed');
    const running = this.init.activeRunId();
    if (running !== null) throw new ConfigError('cannot plan now', [`run ${running} is in progress`]);
    const config = parseRunConfig(input);
    if (config.strategy === 'data')
      throw new ConfigError('cannot plan now', ['strategy: data parallelism has no stages to plan']);
    const P = runShape(config).stages;
    this.preview?.abort.abort(new AbortError('superseded by a newer plan request'));
    const abort = new AbortController();
    const onOuterAbort = (): void => abort.abort(opts.signal?.reason ?? new AbortError('plan cancelled'));
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (opts.signal?.aborted) onOuterAbort();
    const devices = new Set<string>();
    const s = {
      runId: --this.planCounter,
      abort,
      waiters: new Set<Waiter>(),
      profiles: new Map<string, LayerCost[]>(),
      devices,
    };
    this.preview = s;
    try {
      if (abort.signal.aborted) throw asError(abort.signal.reason);
      const waitMs = opts.waitMs ?? 0;
      const { membership } = this.init;
      const chosen =
        waitMs > 0 ? await membership.waitForIdle(P, waitMs, abort.signal) : membership.idle().slice(0, P);
      if (chosen.length < P)
        throw new ConfigError('cannot plan now', [`${P} stages need ${P} idle peers; ${chosen.length} idle`]);
      for (const d of chosen) devices.add(d.peerId);
      const inputs = await this.profile(s, config, chosen);
      if (abort.signal.aborted) throw asError(abort.signal.reason);
      return {
        layers: inputs.layers,
        devices: inputs.devices.map((d) => ({ peerId: d.id, speed: d.gflops, memoryBytes: d.memoryBytes })),
        options: inputs.options,
        plan: planStages(inputs.layers, inputs.devices, inputs.options),
      };
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      s.waiters.clear();
      if (this.preview === s) this.preview = null;
    }
  }
}

/**
 * The layer profiles with `outputBytes` as the run's stages will send them: the measured float32
 * bytes times the codec's width (fp16 2 of 4 bytes, int8 1) and, with zero skipping (fp32 and fp16;
 * int8 sends every element), for a zero-gated output the mask (1 bit an element) and the
 * PLANNER_NONZERO_SHARE of elements that carry a value. So a cut after a ReLU counts about half of
 * one after the dense layer before it, where the two are the same size.
 */
export function wireBytes(
  layers: readonly LayerCost[],
  config: Pick<RunConfig, 'model' | 'activationCompress' | 'activationSkipZeros'>,
): LayerCost[] {
  const width = { none: 4, fp16: 2, int8: 1 }[config.activationCompress];
  const skip = config.activationSkipZeros && config.activationCompress !== 'int8';
  const specs = modelPreset(config.model).layers;
  return layers.map((l, i) => {
    if (l.outputBytes === undefined) return l;
    const elements = l.outputBytes / 4;
    const perElement = skip && zeroGatedOutput(specs, i + 1) ? 1 / 8 + PLANNER_NONZERO_SHARE * width : width;
    return { ...l, outputBytes: Math.round(elements * perElement) };
  });
}
