import type { PipelineReport, RunReport } from '@peertrain/coordinator';
import { formatBytes, formatLoss, formatMs, formatPercent, formatRate, Stats } from '@peertrain/ui';
import { activationFormat } from '@peertrain/protocol';
import type { ChromeTrace } from '@peertrain/protocol';
import type { TrainedModel } from '@peertrain/coordinator';
import { downloadModel, downloadReport, downloadTrace } from '../report.ts';
import { layersText, scheduleName, shortPeerId, strategyName } from '../peerLabels.ts';

/** Relative tolerance under which a parallel run agrees with the single-worker reference (DESIGN.md). */
export const REFERENCE_REL_TOLERANCE = 1e-4;

export function ReportCard(props: {
  report: RunReport;
  room: string;
  /** The run's spans as a Chrome trace (null: none kept). */
  trace?: () => ChromeTrace;
  /** The trained parameters, when rank 0 sent them. */
  trained?: () => TrainedModel | null;
}) {
  const r = props.report;
  const ref = r.reference;
  return (
    <section className="card report">
      <div className="card-head">
        <h2>
          Report{' '}
          <span className="muted">
            {r.workers.length} workers, {strategyName(r.config)}, {r.config.model}, {r.config.steps} steps ×{' '}
            {r.config.batch}
          </span>
        </h2>
        <div className="button-row">
          <button type="button" onClick={() => downloadReport(r, props.room)}>
            Report JSON
          </button>
          {props.trace && (
            <button
              type="button"
              data-testid="export-trace"
              onClick={() => downloadTrace(props.trace!(), r, props.room)}
            >
              Trace (Perfetto)
            </button>
          )}
          {props.trained?.() && (
            <button
              type="button"
              data-testid="export-model"
              title="TensorFlow.js Layers model: model.json + weights.bin, load with tf.loadLayersModel"
              onClick={() => void downloadModel(props.trained!()!)}
            >
              Model (TF.js)
            </button>
          )}
        </div>
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
          ...reportExtras(r),
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
      {r.pipeline && <PipelineSection pipeline={r.pipeline} room={props.room} />}
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

/** Share of the peak activation memory that recomputation saved (0 when it saved none). */
function recomputeSaving(withSetting: number, without: number): number {
  return without > 0 ? Math.max(0, 1 - withSetting / without) : 0;
}

/** The pipeline's bubble, and per stage its layers, parameters and peak activation memory. */
function PipelineSection(props: { pipeline: PipelineReport; room: string }) {
  const p = props.pipeline;
  const peakWith = p.perStage.reduce((m, s) => Math.max(m, s.peakActivationBytes), 0);
  const peakWithout = p.perStage.reduce((m, s) => Math.max(m, s.peakActivationBytesNoRecompute), 0);
  return (
    <div className="report-pipeline">
      <h3>
        Pipeline{' '}
        <span className="muted">
          {scheduleName(p.schedule)}, {p.stages} stages
          {(p.virtualStages ?? 1) > 1 ? ` (${p.virtualStages} chunks per peer)` : ''}
          {p.replicas > 1 ? ` × ${p.replicas} replicas` : ''}, {p.microBatches} micro-batches
          {p.recompute ? ', recompute' : ''}
        </span>
      </h3>
      <Stats
        items={[
          [
            'bubble measured',
            formatPercent(p.bubbleMeasured, 1),
            p.bubbleMeasured > p.bubbleTheory + 0.05 ? 'warn-text' : undefined,
          ],
          ['bubble theory', formatPercent(p.bubbleTheory, 1)],
          ['predicted step', formatMs(p.predictedStepMs)],
          [
            'peak activations',
            p.recompute
              ? `${formatBytes(peakWith)} (−${formatPercent(recomputeSaving(peakWith, peakWithout), 0)})`
              : formatBytes(peakWith),
          ],
          ...(p.bytesBetweenStagesPerStep !== undefined
            ? [
                [
                  `between stages (${activationFormat(p)})`,
                  `${formatBytes(p.bytesBetweenStagesPerStep)} a step`,
                ] as [string, string],
              ]
            : []),
        ]}
      />
      <div className="table-scroll">
        <table>
          <thead>
            <tr>
              <th className="num">stage</th>
              <th>layers</th>
              <th>peer</th>
              <th className="num">parameters</th>
              <th className="num">peak activations</th>
              <th className="num">without recompute</th>
            </tr>
          </thead>
          <tbody>
            {p.perStage.map((s) => (
              <tr key={s.stage}>
                <td className="num">{s.stage}</td>
                <td>
                  {/* The report's layers are [first, last], inclusive. */}
                  <span className="mono">
                    {layersText({
                      first: s.layers[0],
                      end: s.layers[1] + 1,
                      chunks: (s.chunks ?? [s.layers]).map(([a, b]) => ({ first: a, end: b + 1 })),
                    })}
                  </span>{' '}
                  <span className="muted small">{s.layerNames.join(' · ')}</span>
                </td>
                <td className="mono" title={s.peerId}>
                  {shortPeerId(s.peerId, props.room)}
                </td>
                <td className="num">{formatBytes(s.parameterBytes)}</td>
                <td className="num">{formatBytes(s.peakActivationBytes)}</td>
                <td className="num">{formatBytes(s.peakActivationBytesNoRecompute)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/**
 * The report's stats that not every report has: bytes per sample and compute share (reports
 * before them lack both), the target, staleness and compression where the run had them.
 */
export function reportExtras(r: RunReport): [string, string][] {
  const out: [string, string][] = [];
  if (r.bytesPerSample !== undefined) out.push(['bytes / sample', formatBytes(r.bytesPerSample)]);
  if (r.computeUtilization !== undefined) out.push(['compute share', formatPercent(r.computeUtilization, 0)]);
  const t = r.target;
  if (t) {
    const what = `target ${formatPercent(t.accuracy, 1)}`;
    out.push(
      t.reached && t.step !== null
        ? [what, `step ${t.step}, ${formatMs(t.timeToTargetMs ?? NaN)}`]
        : [what, 'not reached'],
    );
  }
  if (r.staleness) out.push(['staleness', `mean ${r.staleness.mean.toFixed(2)}, max ${r.staleness.max}`]);
  if (r.compression) {
    const ratio = r.compression.bytesRatio;
    out.push(['compression', `${r.compression.spec}${ratio !== undefined ? ` (${ratio.toFixed(3)}×)` : ''}`]);
  }
  return out;
}
