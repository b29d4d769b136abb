import { useRef, type KeyboardEvent, type PointerEvent } from 'react';
import type { StagePlan, StageRange } from '@peertrain/planner';
import type { PlanPreview } from '@peertrain/coordinator';
import { formatBytes, formatMs } from '@peertrain/ui';
import { boundariesOf, moveBoundary, rangesOf } from './planEdit.ts';

/** Stage colours, cycled (8 distinct hues, readable behind white text). */
export const STAGE_COLOURS = [
  '#2563eb',
  '#d97706',
  '#059669',
  '#7c3aed',
  '#db2777',
  '#0891b2',
  '#65a30d',
  '#dc2626',
] as const;

const colourOf = (stage: number): string => STAGE_COLOURS[stage % STAGE_COLOURS.length]!;

export interface PlanEditorProps {
  /** Layer names, in model order ("0.dense"). */
  layers: readonly string[];
  /** The partition drawn: one contiguous range per stage. */
  ranges: readonly StageRange[];
  /** Per stage, the peer that would hold it (replica 0, rank order), or null when not known yet. */
  peers: readonly (string | null)[];
  /** The preview's devices (memory per stage), when there is a preview. */
  devices: PlanPreview['devices'] | null;
  /** The prediction for `ranges` (from evaluatePartition), when there is a preview and it fits. */
  predicted: StagePlan | null;
  /** A stage refused (does not fit its device), with the reason. */
  refused: { stage: number | null; message: string } | null;
  /** Short display name of a peer. */
  peerName: (peerId: string) => string;
  disabled: boolean;
  onChange: (ranges: StageRange[]) => void;
}

/**
 * A horizontal strip of the model's layers cut into coloured stages, with a draggable handle on
 * every cut (pointer, or focus and arrow keys: one layer per press), and per stage its layers, peer
 * and, with a preview, predicted time per micro-batch and memory against the device's.
 */
export function PlanEditor(props: PlanEditorProps) {
  const { layers, ranges, onChange } = props;
  const n = layers.length;
  const strip = useRef<HTMLDivElement>(null);
  const dragging = useRef<number | null>(null);
  const boundaries = boundariesOf(ranges);
  const stageOf = (layer: number): number => ranges.findIndex((r) => layer >= r.first && layer < r.end);

  const move = (k: number, to: number): void => {
    const next = moveBoundary(boundaries, k, to, n);
    if (next !== boundaries) onChange(rangesOf(next, n));
  };

  const onPointerDown = (k: number) => (e: PointerEvent<HTMLDivElement>) => {
    if (props.disabled) return;
    e.preventDefault();
    e.currentTarget.setPointerCapture(e.pointerId);
    e.currentTarget.focus();
    dragging.current = k;
  };
  const onPointerMove = (k: number) => (e: PointerEvent<HTMLDivElement>) => {
    if (dragging.current !== k || strip.current === null) return;
    const rect = strip.current.getBoundingClientRect();
    // The cut nearest the pointer: layer boundaries sit at multiples of the cell width.
    move(k, ((e.clientX - rect.left) / rect.width) * n);
  };
  const onPointerUp = (e: PointerEvent<HTMLDivElement>) => {
    dragging.current = null;
    if (e.currentTarget.hasPointerCapture(e.pointerId)) e.currentTarget.releasePointerCapture(e.pointerId);
  };
  const onKeyDown = (k: number) => (e: KeyboardEvent<HTMLDivElement>) => {
    if (props.disabled) return;
    const b = boundaries[k]!;
    const to =
      e.key === 'ArrowLeft' || e.key === 'ArrowDown'
        ? b - 1
        : e.key === 'ArrowRight' || e.key === 'ArrowUp'
          ? b + 1
          : e.key === 'Home'
            ? 0
            : e.key === 'End'
              ? n
              : null;
    if (to === null) return;
    e.preventDefault();
    move(k, to);
  };

  return (
    <div className={`plan-editor${props.disabled ? ' disabled' : ''}`} role="group" aria-label="plan editor">
      <div className="plan-strip" ref={strip}>
        {layers.map((name, i) => {
          const s = stageOf(i);
          return (
            <div
              key={i}
              className={`plan-layer${s === props.refused?.stage ? ' refused' : ''}`}
              style={{ background: colourOf(s) }}
              title={`${name} · stage ${s}`}
            >
              {i}
            </div>
          );
        })}
        {boundaries.map((b, k) => (
          <div
            key={k}
            className="plan-handle"
            role="slider"
            tabIndex={props.disabled ? -1 : 0}
            aria-label={`boundary ${k + 1}`}
            aria-valuemin={(k === 0 ? 0 : boundaries[k - 1]!) + 1}
            aria-valuemax={(k === boundaries.length - 1 ? n : boundaries[k + 1]!) - 1}
            aria-valuenow={b}
            aria-valuetext={`stage ${k + 1} starts at layer ${b}`}
            aria-disabled={props.disabled}
            style={{ left: `${(b / n) * 100}%` }}
            onPointerDown={onPointerDown(k)}
            onPointerMove={onPointerMove(k)}
            onPointerUp={onPointerUp}
            onPointerCancel={onPointerUp}
            onKeyDown={onKeyDown(k)}
          />
        ))}
      </div>
      <ol className="plan-stages">
        {ranges.map((r, s) => {
          const peer = props.peers[s] ?? null;
          const predicted = props.predicted?.stages[s] ?? null;
          const device = props.devices?.[s] ?? null;
          const refused = props.refused !== null && props.refused.stage === s;
          const share = predicted && device ? predicted.memoryBytes / device.memoryBytes : null;
          return (
            <li key={s} className={`plan-stage${refused ? ' refused' : ''}`} data-stage={s}>
              <span className="swatch" style={{ background: colourOf(s) }} />
              <div className="plan-stage-body">
                <div className="plan-stage-head">
                  <strong>S{s}</strong>
                  <span className="plan-stage-layers">
                    layers {r.end - 1 === r.first ? r.first : `${r.first}–${r.end - 1}`}
                  </span>
                  <span className="muted plan-stage-peer">
                    {peer ? props.peerName(peer) : 'next idle peer'}
                  </span>
                </div>
                <span className="plan-stage-names">{layers.slice(r.first, r.end).join(' · ')}</span>
                {predicted && device && (
                  <div className="plan-stage-figures">
                    <span className="plan-ms">{formatMs(predicted.predictedMs)} / µbatch</span>
                    <span className="plan-mem">
                      {formatBytes(predicted.memoryBytes)} of {formatBytes(device.memoryBytes)}
                    </span>
                    <span className="plan-mem-bar" aria-hidden="true">
                      <span style={{ width: `${Math.min(1, share ?? 0) * 100}%` }} />
                    </span>
                  </div>
                )}
                {refused && (
                  <small className="error-text" role="alert">
                    {props.refused!.message}
                  </small>
                )}
              </div>
            </li>
          );
        })}
      </ol>
      {props.predicted && (
        <p className="plan-step">
          predicted step <strong>{formatMs(props.predicted.predictedStepMs)}</strong> · bottleneck{' '}
          {formatMs(props.predicted.bottleneckMs)} per micro-batch
        </p>
      )}
    </div>
  );
}
