import type { PipelineView } from '@peertrain/coordinator';
import { formatMs, formatPercent } from '@peertrain/ui';
import { sparkline } from '../timeline.ts';
import { scheduleName } from '../peerLabels.ts';

/** Above theory by more than this (absolute), the measured bubble is flagged: comm or imbalance. */
const SLACK = 0.05;

function Meter(props: { label: string; value: number | null; className: string; title?: string }) {
  const v = props.value;
  return (
    <div className={`meter ${props.className}`} title={props.title}>
      <span className="meter-label">{props.label}</span>
      <span className="meter-bar">
        <span style={{ width: `${v === null ? 0 : Math.min(100, Math.max(0, v * 100)).toFixed(1)}%` }} />
      </span>
      <span className="meter-value">{formatPercent(v, 1)}</span>
    </div>
  );
}

const SPARK_W = 180;
const SPARK_H = 40;

/** Measured pipeline bubble against (P - 1) / (M + P - 1), with the last steps (BUBBLE_HISTORY) as a sparkline. */
export function BubbleStats(props: { pipeline: PipelineView }) {
  const p = props.pipeline;
  const values = p.bubbles.map((b) => b.bubble);
  const top = Math.min(1, 1.15 * values.reduce((m, v) => Math.max(m, v), Math.max(0.05, p.bubbleTheory)));
  const theoryY = SPARK_H - (p.bubbleTheory / top) * SPARK_H;
  const excess = p.bubbleMeasured === null ? null : p.bubbleMeasured - p.bubbleTheory;
  return (
    <div className="bubble-stats">
      <h3>Pipeline bubble</h3>
      <Meter
        label="measured"
        value={p.bubbleMeasured}
        className="measured"
        title="median idle fraction per step"
      />
      <Meter label="theory" value={p.bubbleTheory} className="theory" title="(P − 1) / (M + P − 1)" />
      {excess !== null && excess > SLACK && (
        <p className="warn-text small">
          {(excess * 100).toFixed(1)} points above theory: transfers or unequal stages.
        </p>
      )}
      {values.length > 1 && (
        <svg
          className="spark"
          viewBox={`0 0 ${SPARK_W} ${SPARK_H}`}
          preserveAspectRatio="none"
          role="img"
          aria-label="measured bubble per step"
        >
          <line x1={0} x2={SPARK_W} y1={theoryY} y2={theoryY} className="spark-theory" />
          <polyline points={sparkline(values, SPARK_W, SPARK_H, top)} className="spark-measured" />
        </svg>
      )}
      <p className="muted small">
        {scheduleName(p.schedule)} · P = {p.stages} stages
        {p.replicas > 1 ? ` × ${p.replicas} replicas` : ''} · M = {p.microBatches} micro-batch
        {p.microBatches === 1 ? '' : 'es'}
        {p.recompute ? ' · recompute' : ''}
      </p>
      {p.snapshotStep !== undefined && (
        <p className="muted small" title="elastic: every stage's snapshot after this step is in">
          {p.snapshotStep === 0
            ? 'a stage lost now redoes from the start'
            : `a stage lost now redoes from step ${p.snapshotStep}`}
        </p>
      )}
      {p.predictedStepMs !== null && (
        <p className="muted small">planner predicted {formatMs(p.predictedStepMs)} a step</p>
      )}
    </div>
  );
}
