import type { RunReport } from '@peertrain/coordinator';
import { formatBytes, formatLoss, formatMs, formatPercent, formatRate } from '../shared/format.ts';
import { downloadReport } from '../report.ts';
import { Stats } from '../shared/ui.tsx';

/** Relative tolerance under which a parallel run agrees with the single-worker reference (DESIGN.md). */
export const REFERENCE_REL_TOLERANCE = 1e-4;

export function ReportCard(props: { report: RunReport; room: string }) {
  const r = props.report;
  const ref = r.reference;
  return (
    <section className="card report">
      <div className="card-head">
        <h2>
          Report{' '}
          <span className="muted">
            {r.workers.length} workers, {r.config.sync}, {r.config.model}, {r.config.steps} steps ×{' '}
            {r.config.batch}
          </span>
        </h2>
        <button type="button" onClick={() => downloadReport(r, props.room)}>
          Download report JSON
        </button>
      </div>
      <Stats
        items={[
          ['final loss', formatLoss(r.finalLoss)],
          ['test accuracy', formatPercent(r.testAccuracy, 2)],
          ['wall time', formatMs(r.wallMs)],
          ['samples/s', formatRate(r.samplesPerSec, '')],
          ['step (median)', formatMs(r.stepMsMedian)],
          ['compute / comm', `${formatMs(r.computeMsMedian)} / ${formatMs(r.commMsMedian)}`],
          ['bytes sent', formatBytes(r.bytesSent)],
        ]}
      />
      {ref ? (
        <p className={ref.maxRelDiff <= REFERENCE_REL_TOLERANCE ? 'ok-text' : 'error-text'}>
          Reference: max |Δ| {ref.maxAbsDiff.toExponential(2)}, max rel Δ {ref.maxRelDiff.toExponential(2)},
          reference loss {formatLoss(ref.referenceLoss)}{' '}
          {ref.maxRelDiff <= REFERENCE_REL_TOLERANCE
            ? '(agrees)'
            : `(differs: above ${REFERENCE_REL_TOLERANCE})`}
        </p>
      ) : (
        <p className="muted">No reference run (tick the reference box to compare).</p>
      )}
      {r.errors.length > 0 && (
        <ul className="error-list">
          {r.errors.map((e, i) => (
            <li key={i} className="error-text">
              <strong>{e.name}</strong>: {e.message}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
