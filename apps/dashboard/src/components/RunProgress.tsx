import type { PeerView, RunView } from '@peertrain/coordinator';
import { formatEta, formatLoss, formatMs, formatRate, Stats, StepProgress } from '@peertrain/ui';
import { runProgress } from '../progress.ts';

/** Phase, step / total, throughput, ETA and the run's error if any. */
export function RunProgress(props: { run: RunView; peers: readonly PeerView[] }) {
  const { run } = props;
  const p = runProgress(run);
  const idle = props.peers.filter((peer) => peer.state === 'idle').length;
  const wanted = run.config?.workers ?? null;
  return (
    <section className="card progress-card">
      <StepProgress
        title={
          <>
            Progress <span className={`pill phase-${run.phase}`}>{run.phase}</span>
          </>
        }
        step={p.step}
        total={p.totalSteps}
      />
      <Stats
        items={[
          ['samples/s', formatRate(p.samplesPerSec, '')],
          ['step time', formatMs(p.stepMs)],
          ['ETA', run.phase === 'running' || run.phase === 'finishing' ? formatEta(p.etaMs) : '–'],
          ['loss', formatLoss(p.lastLoss)],
        ]}
      />
      {run.phase === 'preparing' && wanted !== null && (
        <p className="muted">
          Waiting for {wanted} worker{wanted === 1 ? '' : 's'} ({idle} idle now)…
        </p>
      )}
      {run.error && (
        <p className="error-text" role="alert">
          <strong>{run.error.name}</strong>: {run.error.message}
        </p>
      )}
    </section>
  );
}
