import type { ReactNode } from 'react';
import {
  COMPRESS_CHOICES,
  compressArg,
  hasServer,
  isElasticChoice,
  isPipelined,
  type CompressKind,
  type RunFormField,
  type RunFormState,
} from '../runForm.ts';

/*
 * The run form's method settings: local steps (DiLoCo's inner steps and outer optimizer), the
 * asynchronous server's staleness and server shards, compression of what is exchanged, and the
 * target accuracy that ends a run early. Each shows only for the choices it applies to.
 */

type MethodTextKey =
  | 'innerSteps'
  | 'fillMax'
  | 'outerLr'
  | 'outerMomentum'
  | 'staleness'
  | 'psShards'
  | 'spares'
  | 'compressArg'
  | 'targetAccuracy';
type MethodCheckKey = 'outerNesterov' | 'overlapOuter' | 'fillWaits' | 'elastic';

/** The method fields the form shows for a choice (the others' issues are shown form-wide). */
export function methodFieldsShown(form: RunFormState): RunFormField[] {
  const shown: RunFormField[] = ['targetAccuracy'];
  if (form.strategy === 'diloco') shown.push('innerSteps', 'outerLr', 'outerMomentum');
  if (form.strategy === 'diloco' && form.overlapOuter && form.fillWaits) shown.push('fillMax');
  if (form.strategy === 'ps-async') shown.push('staleness');
  if (form.strategy === 'pipeline' && form.elastic) shown.push('spares');
  if (hasServer(form.strategy)) shown.push('psShards');
  if (!isPipelined(form.strategy)) shown.push('compress', 'compressArg');
  return shown;
}

export function MethodFields(props: {
  form: RunFormState;
  issues: ReadonlyMap<RunFormField | null, readonly string[]>;
  set: <K extends keyof RunFormState>(key: K, value: RunFormState[K]) => void;
  onCompress: (kind: CompressKind) => void;
  /** A labelled field with its issues (the form's own). */
  field: (label: string, key: RunFormField, control: ReactNode, wide?: boolean) => ReactNode;
}) {
  const { form, set, field } = props;
  const text = (key: MethodTextKey, mode: 'numeric' | 'decimal', placeholder?: string) => (
    <input
      inputMode={mode}
      value={form[key]}
      placeholder={placeholder}
      aria-invalid={props.issues.has(key)}
      onChange={(e) => set(key, e.currentTarget.value)}
    />
  );
  const check = (key: MethodCheckKey, label: string) => (
    <label className="field check wide">
      <input type="checkbox" checked={form[key]} onChange={(e) => set(key, e.currentTarget.checked)} />
      <span>{label}</span>
    </label>
  );
  // Pipelines are not offered compression: no argument field either.
  const arg = isPipelined(form.strategy) ? null : compressArg(form.compress);
  return (
    <div className="fields pipeline-fields method-fields" role="group" aria-label="method settings">
      {form.strategy === 'diloco' && (
        <>
          <h3 className="wide">Local steps</h3>
          {field('inner steps / round', 'innerSteps', text('innerSteps', 'numeric'))}
          {field('outer learning rate', 'outerLr', text('outerLr', 'decimal'))}
          {field('outer momentum', 'outerMomentum', text('outerMomentum', 'decimal'))}
          {check('outerNesterov', 'Nesterov outer momentum')}
          {check('overlapOuter', "overlap the outer exchange with the next round's steps")}
          {form.overlapOuter &&
            check('fillWaits', 'take extra local steps instead of waiting for slower peers')}
          {form.overlapOuter &&
            form.fillWaits &&
            field(
              'max extra steps / wait',
              'fillMax',
              text('fillMax', 'numeric', `${form.innerSteps.trim() || 'H'} (H)`),
            )}
        </>
      )}
      {hasServer(form.strategy) && (
        <>
          <h3 className="wide">Parameter server</h3>
          {form.strategy === 'ps-async' &&
            field('staleness (versions)', 'staleness', text('staleness', 'numeric'))}
          {field('server shards', 'psShards', text('psShards', 'numeric'))}
        </>
      )}
      {isElasticChoice(form.strategy) && (
        <>
          <h3 className="wide">Peers leaving and arriving</h3>
          {form.strategy === 'pipeline'
            ? check('elastic', "elastic: a closed stage tab's layers go to a spare peer; the run goes on")
            : check('elastic', 'elastic: a closed tab ends an epoch, not the run; newcomers join mid-run')}
          {form.strategy === 'pipeline' &&
            form.elastic &&
            field('spares (of the workers)', 'spares', text('spares', 'numeric'))}
        </>
      )}
      <h3 className="wide">{isPipelined(form.strategy) ? 'Stopping' : 'Exchange and stopping'}</h3>
      {!isPipelined(form.strategy) &&
        field(
          'compression',
          'compress',
          <select
            value={form.compress}
            onChange={(e) => props.onCompress(e.currentTarget.value as CompressKind)}
          >
            {COMPRESS_CHOICES.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>,
        )}
      {arg && field(arg.label, 'compressArg', text('compressArg', 'decimal', arg.default))}
      {field('target accuracy', 'targetAccuracy', text('targetAccuracy', 'decimal', 'none: run every step'))}
    </div>
  );
}
