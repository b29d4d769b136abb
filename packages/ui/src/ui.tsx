import type { ReactNode } from 'react';
import { BACKENDS } from '@peertrain/protocol';

// Small presentational pieces both pages use.

export function TopBar(props: { title: string; room?: string; children?: ReactNode }) {
  return (
    <header className="topbar">
      <h1>{props.title}</h1>
      {props.room !== undefined && (
        <span className="room">
          room <strong className="mono">{props.room}</strong>
        </span>
      )}
      {props.children}
    </header>
  );
}

/** A labelled bar for step / total. */
export function ProgressBar(props: { value: number; max: number; label: string }) {
  const fraction = props.max > 0 ? Math.min(1, Math.max(0, props.value / props.max)) : 0;
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={props.label}
      aria-valuemin={0}
      aria-valuemax={props.max}
      aria-valuenow={props.value}
    >
      <div className="progress-fill" style={{ width: `${(fraction * 100).toFixed(2)}%` }} />
    </div>
  );
}

/** Card heading with "step n / total" on the right, and the bar under it. */
export function StepProgress(props: { title: ReactNode; step: number; total: number }) {
  return (
    <>
      <div className="card-head">
        <h2>{props.title}</h2>
        <span className="mono">
          step {props.step} / {props.total}
        </span>
      </div>
      <ProgressBar value={props.step} max={props.total} label="training progress" />
    </>
  );
}

/** A grid of figures: [label, value, optional class of the value]. */
export function Stats(props: { items: readonly (readonly [string, ReactNode, (string | undefined)?])[] }) {
  return (
    <dl className="stats">
      {props.items.map(([label, value, className]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd className={className}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** <option>s for a backend choice: auto, then every backend the protocol knows. */
export function BackendOptions(props: { autoLabel: string }) {
  return (
    <>
      <option value="auto">{props.autoLabel}</option>
      {BACKENDS.map((b) => (
        <option key={b} value={b}>
          {b}
        </option>
      ))}
    </>
  );
}
