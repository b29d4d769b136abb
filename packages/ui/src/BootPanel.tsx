import type { WireError } from '@peertrain/protocol';
import { bootFailureText, bootProgressText, type BootStage } from './bootStage.ts';

/** Start-up progress, or a clear failure with its reason and a retry button (never a blank page). */
export function BootPanel(props: { stage: BootStage; error: WireError | null; onRetry: () => void }) {
  if (props.error === null) {
    return (
      <section className="card boot" aria-live="polite">
        <span className="spinner" aria-hidden="true" />
        <p>{bootProgressText(props.stage)}</p>
      </section>
    );
  }
  const { title, detail } = bootFailureText(props.stage);
  return (
    <section className="card boot boot-failed" role="alert">
      <h2>{title}</h2>
      <p>{detail}</p>
      <p className="error-text">
        <strong>{props.error.name}</strong>: {props.error.message}
      </p>
      <button type="button" onClick={props.onRetry}>
        Retry
      </button>
    </section>
  );
}
