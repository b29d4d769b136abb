import { useCallback, useMemo, useState, type ReactNode } from 'react';
import { coordinatorPeerId, randomId, workerPeerId } from '@peertrain/protocol';
import '@peertrain/engine/browser';
import {
  createWorkerRuntime,
  engineCompute,
  type WorkerRuntime,
  type WorkerStatus,
} from '@peertrain/worker-runtime';
import { BootPanel } from '../../dashboard/src/shared/BootPanel.tsx';
import { Stats, StepProgress, TopBar } from '../../dashboard/src/shared/ui.tsx';
import { CONFIG_STAGE, type BootStage } from '../../dashboard/src/shared/bootStage.ts';
import { fetchPageConfig, signalUrl } from '../../dashboard/src/shared/pageConfig.ts';
import { openPeerSession, type PeerSession } from '../../dashboard/src/shared/peerSession.ts';
import { useBoot, type BootContext } from '../../dashboard/src/shared/useBoot.ts';
import { useFrameThrottled } from '../../dashboard/src/shared/useFrameThrottled.ts';
import {
  formatBytes,
  formatGflops,
  formatLoss,
  formatShard,
  orDash,
} from '../../dashboard/src/shared/format.ts';
import { phaseText, type BackendChoice } from './workerParams.ts';

/** Served from public/data (built by packages/engine/scripts/build-mnist.ts). */
export const MNIST_URL = '/data/mnist.bin';

interface Live {
  session: PeerSession;
  runtime: WorkerRuntime;
  /** Leaves the room and closes the links; idempotent. */
  leave(reason: string): Promise<void>;
}

async function startWorker(room: string, backend: BackendChoice, ctx: BootContext<BootStage>): Promise<Live> {
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
      compute: (o) => engineCompute({ backend, mnist: { kind: 'url', url: MNIST_URL }, signal: o.signal }),
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

export function App(props: { room: string; backend: BackendChoice }) {
  const { room, backend } = props;
  const start = useCallback(
    (ctx: BootContext<BootStage>) => startWorker(room, backend, ctx),
    [room, backend],
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

function Row(props: { label: string; children: ReactNode }) {
  return (
    <div className="kv">
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </div>
  );
}

function WorkerView(props: { live: Live }) {
  const { runtime } = props.live;
  const source = useMemo(
    () => ({
      get: () => runtime.status(),
      subscribe: (l: (s: WorkerStatus) => void) => runtime.subscribe(l),
    }),
    [runtime],
  );
  const s = useFrameThrottled(source);
  const [leaving, setLeaving] = useState(false);
  const leave = (): void => {
    setLeaving(true);
    props.live.leave('left by user').catch((err: unknown) => console.warn('leave failed', err));
  };
  const device = s.device;

  return (
    <>
      <section className="card status">
        <div className="status-head">
          <span className={`pill phase-${s.phase}`}>{s.phase}</span>
          <strong>{phaseText(s.phase)}</strong>
          {s.phase === 'left' ? (
            <button type="button" className="primary" onClick={() => location.reload()}>
              Join again
            </button>
          ) : (
            <button type="button" className="danger" onClick={leave} disabled={leaving}>
              {leaving ? 'Leaving…' : 'Leave'}
            </button>
          )}
        </div>
        <dl className="kvs">
          <Row label="rank / world">{s.rank === null ? '–' : `${s.rank} / ${orDash(s.worldSize)}`}</Row>
          <Row label="role">{orDash(s.role)}</Row>
          <Row label="shard">{formatShard(s.shard)}</Row>
          <Row label="backend">
            {device === null ? 'measuring…' : `${device.backend}, ${formatGflops(device.gflops)} GFLOP/s`}
          </Row>
          <Row label="peer id">
            <span className="mono">{s.peerId}</span>
          </Row>
        </dl>
      </section>

      <section className="card training">
        <StepProgress title="Training" step={s.step} total={s.totalSteps} />
        <Stats
          items={[
            ['loss', formatLoss(s.loss)],
            ['sent', formatBytes(s.bytesSent)],
            ['received', formatBytes(s.bytesReceived)],
            ['frames refused', s.framesRefused, s.framesRefused > 0 ? 'error-text' : undefined],
          ]}
        />
      </section>

      {s.lastError && (
        <section className="card last-error" role="alert">
          <h2>Last error</h2>
          <p className="error-text">
            <strong>{s.lastError.name}</strong>: {s.lastError.message}
          </p>
        </section>
      )}

      <section className="card device">
        <h2>
          Device{' '}
          {device && (
            <span className="muted">
              {device.backend}, {formatGflops(device.gflops)} GFLOP/s
            </span>
          )}
        </h2>
        {device === null ? (
          <p className="muted">Measuring backends…</p>
        ) : (
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
        )}
        {device?.adapter && (
          <p className="muted small">
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
