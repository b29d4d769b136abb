import { useCallback, useMemo, useState, type ReactNode } from 'react';
import {
  coordinatorPeerId,
  linkCountsText,
  randomId,
  workerPeerId,
  type ComputePlace,
} from '@peertrain/protocol';
import '@peertrain/engine/browser';
import {
  createWorkerRuntime,
  engineCompute,
  type Compute,
  type WorkerRuntime,
  type WorkerStatus,
} from '@peertrain/worker-runtime';
import {
  type BootContext,
  BootPanel,
  type BootStage,
  CONFIG_STAGE,
  fetchPageConfig,
  formatBytes,
  formatGflops,
  formatLoss,
  formatShard,
  openPeerSession,
  orDash,
  type PeerSession,
  signalUrl,
  StepProgress,
  TopBar,
  useBoot,
  useFrameThrottled,
} from '@peertrain/ui';
import { computeThread } from './computeThread.ts';
import { memoryText, phaseText, roleText, type BackendChoice } from './workerParams.ts';

/** Served from public/data (built by packages/engine/scripts/build-mnist.ts). */
export const MNIST_URL = '/data/mnist.bin';

interface Live {
  session: PeerSession;
  runtime: WorkerRuntime;
  /** Leaves the room and closes the links; idempotent. */
  leave(reason: string): Promise<void>;
}

/** The engine where the page's `compute` parameter says: its own thread, or this page's. */
function makeCompute(backend: BackendChoice, place: ComputePlace, signal: AbortSignal): Promise<Compute> {
  if (place === 'thread')
    return computeThread({ backend, mnistUrl: new URL(MNIST_URL, location.href).href }, signal);
  return engineCompute({ backend, mnist: { kind: 'url', url: MNIST_URL }, signal });
}

async function startWorker(
  room: string,
  backend: BackendChoice,
  place: ComputePlace,
  ctx: BootContext<BootStage>,
): Promise<Live> {
  const { signal, setStage } = ctx;
  setStage(CONFIG_STAGE);
  const config = await fetchPageConfig({ defaultHost: location.hostname, signal });
  const peerId = workerPeerId(room, randomId());
  setStage({ kind: 'signal', url: signalUrl(config.signal), peerId });
  const session = await openPeerSession({ peerId, config, signal });
  try {
    setStage({ kind: 'start', what: 'the worker' });
    const runtime = createWorkerRuntime({
      mesh: session.mesh,
      room,
      coordinatorId: coordinatorPeerId(room),
      compute: (o) => makeCompute(backend, place, o.signal),
      signal,
    });
    let leaving: Promise<void> | null = null;
    return {
      session,
      runtime,
      leave(reason) {
        leaving ??= (async () => {
          try {
            await runtime.leave(reason);
          } finally {
            await session.close();
          }
        })();
        return leaving;
      },
    };
  } catch (err) {
    await session.close();
    throw err;
  }
}

const disposeWorker = (live: Live): Promise<void> => live.leave('page closed');

export function App(props: { room: string; backend: BackendChoice; compute: ComputePlace }) {
  const { room, backend, compute } = props;
  const start = useCallback(
    (ctx: BootContext<BootStage>) => startWorker(room, backend, compute, ctx),
    [room, backend, compute],
  );
  const { state, retry } = useBoot(start, disposeWorker, CONFIG_STAGE);
  return (
    <div className="page worker">
      <TopBar title="PeerTrain worker" room={room} />
      <main className="worker-main">
        {state.status === 'ready' ? (
          <WorkerView live={state.value} />
        ) : (
          <BootPanel
            stage={state.stage}
            error={state.status === 'failed' ? state.error : null}
            onRetry={retry}
          />
        )}
      </main>
    </div>
  );
}

/** One labelled field of the status card; `id` names it for tests (`data-testid="worker-<id>"`). */
function Row(props: { id: string; label: string; wide?: boolean; children: ReactNode }) {
  return (
    <div className={props.wide === true ? 'kv wide' : 'kv'}>
      <dt>{props.label}</dt>
      <dd data-testid={`worker-${props.id}`}>{props.children}</dd>
    </div>
  );
}

/** The training figures, as the shared `.stats` grid, each named for tests. */
function Figures(props: {
  items: readonly (readonly [id: string, label: string, value: ReactNode, bad?: boolean])[];
}) {
  return (
    <dl className="stats figures">
      {props.items.map(([id, label, value, bad]) => (
        <div key={id}>
          <dt>{label}</dt>
          <dd data-testid={`worker-${id}`} className={bad === true ? 'error-text' : undefined}>
            {value}
          </dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * The worker page redraws 4 times a second: it shares the main thread with training, and each
 * redraw of its cards cost 2-3 ms of it with 3 tabs on 2 cores (CPU profile); nobody reads a step
 * counter faster.
 */
const WORKER_VIEW_EVERY_MS = 250;

function WorkerView(props: { live: Live }) {
  const { runtime } = props.live;
  const source = useMemo(
    () => ({
      get: () => runtime.status(),
      subscribe: (l: (s: WorkerStatus) => void) => runtime.subscribe(l),
    }),
    [runtime],
  );
  const s = useFrameThrottled(source, WORKER_VIEW_EVERY_MS);
  const [leaving, setLeaving] = useState(false);
  const leave = (): void => {
    setLeaving(true);
    props.live.leave('left by user').catch((err: unknown) => console.warn('leave failed', err));
  };
  const device = s.device;

  return (
    <>
      <section className="card status" aria-label="worker status">
        <div className="status-head">
          <span className={`pill phase-${s.phase}`} data-testid="worker-phase">
            {s.phase}
          </span>
          <strong className="phase-text" data-testid="worker-phase-text">
            {phaseText(s.phase, s.lastError !== null)}
          </strong>
          {s.phase === 'left' ? (
            <button type="button" className="primary" onClick={() => location.reload()}>
              Join again
            </button>
          ) : (
            <button
              type="button"
              className="danger"
              onClick={leave}
              disabled={leaving}
              data-testid="worker-leave"
            >
              {leaving ? 'Leaving…' : 'Leave'}
            </button>
          )}
        </div>
        <dl className="kvs">
          <Row id="room" label="room">
            <span className="mono">{s.room}</span>
          </Row>
          <Row id="rank" label="rank / world">
            {s.rank === null ? '–' : `${s.rank} / ${orDash(s.worldSize)}`}
          </Row>
          <Row id="role" label="role" wide>
            {roleText(s.role, s.stage)}
          </Row>
          <Row id="shard" label="data shard">
            {formatShard(s.shard)}
          </Row>
          <Row id="backend" label="backend">
            {device === null
              ? 'measuring…'
              : `${device.backend}, ${formatGflops(device.gflops)} GFLOP/s` +
                (device.computeThread === true ? ', in a thread of its own' : '')}
          </Row>
          <Row id="memory" label="memory">
            {memoryText(s.memory)}
          </Row>
          <Row id="links" label="links to peers" wide>
            {/* Tabs of this browser talk inside it (tab links); other devices over WebRTC. */}
            {s.links === null ? '–' : linkCountsText(s.links) || 'none'}
          </Row>
          <Row id="peer-id" label="peer id" wide>
            <span className="mono">{s.peerId}</span>
          </Row>
          <Row id="last-error" label="last error" wide>
            {s.lastError === null ? (
              '–'
            ) : (
              <span className="error-text" role="alert">
                <strong>{s.lastError.name}</strong>: {s.lastError.message}
              </span>
            )}
          </Row>
        </dl>
      </section>

      <section className="card training" aria-label="training progress" data-testid="worker-progress">
        <StepProgress title="Training" step={s.step} total={s.totalSteps} />
        <Figures
          items={[
            ['loss', 'loss', formatLoss(s.loss)],
            ['sent', 'sent', formatBytes(s.bytesSent)],
            ['received', 'received', formatBytes(s.bytesReceived)],
            ['refused', 'frames refused', s.framesRefused, s.framesRefused > 0],
          ]}
        />
      </section>

      <section className="card device">
        <h2>Device</h2>
        {device === null ? (
          <p className="muted">Measuring backends…</p>
        ) : (
          <div className="table-scroll">
            <table>
              <thead>
                <tr>
                  <th>backend</th>
                  <th className="num">GFLOP/s</th>
                  <th>result</th>
                </tr>
              </thead>
              <tbody>
                {device.probes.map((p) => (
                  <tr key={p.backend} className={p.backend === device.backend ? 'chosen' : undefined}>
                    <td>
                      {p.backend}
                      {p.backend === device.backend && ' ✓'}
                    </td>
                    <td className="num">{p.ok ? formatGflops(p.gflops) : '–'}</td>
                    <td className={p.ok ? 'ok-text' : 'error-text probe-error'}>
                      {p.ok ? 'ok' : (p.error ?? 'failed')}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {device?.adapter && (
          <p className="muted small adapter">
            GPU adapter:{' '}
            {Object.entries(device.adapter)
              .filter(([, v]) => v !== '')
              .map(([k, v]) => `${k} ${String(v)}`)
              .join(', ')}
          </p>
        )}
      </section>
    </>
  );
}
