import { useMemo, useState, type FormEvent, type ReactNode } from 'react';
import type { RunConfig } from '@peertrain/protocol';
import type { RunPhase } from '@peertrain/coordinator';
import { BackendOptions } from '../shared/ui.tsx';
import {
  STRATEGY_CHOICES,
  checkRunForm,
  defaultMicroBatches,
  describeShape,
  initialRunForm,
  isPipelined,
  issuesByField,
  withStrategy,
  type RunFormField,
  type RunFormState,
} from '../runForm.ts';

const ACTIVE: readonly RunPhase[] = ['preparing', 'running', 'paused', 'finishing'];

export function isActive(phase: RunPhase): boolean {
  return ACTIVE.includes(phase);
}

function Field(props: { label: string; children: ReactNode; wide?: boolean; issues?: readonly string[] }) {
  const bad = props.issues !== undefined && props.issues.length > 0;
  return (
    <label className={`field${props.wide ? ' wide' : ''}${bad ? ' invalid' : ''}`}>
      <span>{props.label}</span>
      {props.children}
      {props.issues?.map((m) => (
        <small key={m}>{m}</small>
      ))}
    </label>
  );
}

type TextKey =
  'workers' | 'steps' | 'batch' | 'lr' | 'momentum' | 'seed' | 'microBatches' | 'replicas' | 'partition';
type ChoiceKey = 'model' | 'dataset' | 'optimizer' | 'schedule';

const BASE_FIELDS: readonly RunFormField[] = [
  'strategy',
  'workers',
  'model',
  'dataset',
  'steps',
  'batch',
  'lr',
  'optimizer',
  'momentum',
  'seed',
  'backend',
  'reference',
];
const PIPELINE_FIELDS: readonly RunFormField[] = ['schedule', 'microBatches', 'partition', 'recompute'];

/** The run settings with Start / Pause / Resume / Stop; checked as the user types. */
export function RunForm(props: {
  phase: RunPhase;
  /** True while a run started from this page has not settled. */
  busy: boolean;
  onStart: (config: RunConfig) => void;
  onPause: () => void;
  onResume: () => void;
  onStop: () => void;
}) {
  const [form, setForm] = useState<RunFormState>(() => initialRunForm());
  const set = <K extends keyof RunFormState>(key: K, value: RunFormState[K]): void => {
    setForm((f) => ({ ...f, [key]: value }));
  };
  const check = useMemo(() => checkRunForm(form), [form]);
  const issues = useMemo(() => issuesByField(check.ok ? [] : check.issues), [check]);
  const locked = props.busy || isActive(props.phase);
  const pipelined = isPipelined(form.strategy);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (locked || !check.ok) return;
    props.onStart(check.config);
  };

  const text = (key: TextKey, mode: 'numeric' | 'decimal' | 'text', placeholder?: string) => (
    <input
      inputMode={mode}
      value={form[key]}
      placeholder={placeholder}
      aria-invalid={issues.has(key)}
      onChange={(e) => set(key, e.currentTarget.value)}
      disabled={locked || (key === 'momentum' && form.optimizer !== 'sgd')}
    />
  );

  const choice = <K extends ChoiceKey>(key: K, options: readonly (readonly [RunFormState[K], string])[]) => (
    <select value={form[key]} onChange={(e) => set(key, e.currentTarget.value as RunFormState[K])}>
      {options.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </select>
  );

  const field = (label: string, key: RunFormField, control: ReactNode, wide = false) => (
    <Field label={label} issues={issues.get(key) ?? []} wide={wide}>
      {control}
    </Field>
  );

  // Issues of the form as a whole, and of any field not on screen for this strategy.
  const shown = new Set<RunFormField | null>([...BASE_FIELDS, ...(pipelined ? PIPELINE_FIELDS : [])]);
  if (form.strategy === 'hybrid') shown.add('replicas');
  const formWide = [...issues].flatMap(([key, list]) =>
    shown.has(key) ? [] : list.map((m) => (key === null ? m : `${key}: ${m}`)),
  );

  return (
    <form className="card run-form" onSubmit={submit} noValidate>
      <h2>Run</h2>
      <fieldset disabled={locked}>
        <div className="fields">
          {field(
            'strategy',
            'strategy',
            <select
              value={form.strategy}
              onChange={(e) => {
                const next = e.currentTarget.value as RunFormState['strategy'];
                setForm((f) => withStrategy(f, next));
              }}
            >
              {STRATEGY_CHOICES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>,
            true,
          )}
          {field('workers', 'workers', text('workers', 'numeric'))}
          {field(
            'model',
            'model',
            choice('model', [
              ['mlp', 'MLP (3 layers)'],
              ['cnn', 'CNN (8 layers)'],
              ['deepMlp', 'deep MLP (9 layers)'],
              ['wideMlp', 'wide MLP (9 layers, 3.9M parameters)'],
            ]),
          )}
          {field(
            'dataset',
            'dataset',
            choice('dataset', [
              ['mnist', 'MNIST'],
              ['synthetic', 'synthetic'],
            ]),
          )}
          {field('steps', 'steps', text('steps', 'numeric'))}
          {field(pipelined ? 'batch / replica' : 'batch / worker', 'batch', text('batch', 'numeric'))}
          {field('learning rate', 'lr', text('lr', 'decimal'))}
          {field(
            'optimizer',
            'optimizer',
            choice('optimizer', [
              ['sgd', 'SGD'],
              ['adam', 'Adam'],
            ]),
          )}
          {field('momentum', 'momentum', text('momentum', 'decimal'))}
          {field('seed', 'seed', text('seed', 'numeric'))}
          {field(
            'backend',
            'backend',
            <select
              value={form.backend}
              onChange={(e) => set('backend', e.currentTarget.value as RunFormState['backend'])}
            >
              <BackendOptions autoLabel="auto (fastest)" />
            </select>,
          )}
          <label className="field check wide">
            <input
              type="checkbox"
              checked={form.reference}
              onChange={(e) => set('reference', e.currentTarget.checked)}
            />
            <span>also train the single-worker reference and compare</span>
          </label>
        </div>
        {pipelined && (
          <div className="fields pipeline-fields" role="group" aria-label="pipeline settings">
            <h3 className="wide">Pipeline</h3>
            {field(
              'schedule',
              'schedule',
              choice('schedule', [
                ['1f1b', '1F1B'],
                ['gpipe', 'GPipe'],
                ['naive', 'naive (no micro-batches)'],
              ]),
            )}
            {field(
              'micro-batches',
              'microBatches',
              text('microBatches', 'numeric', `default ${defaultMicroBatches(form.schedule)}`),
            )}
            {form.strategy === 'hybrid' && field('replicas', 'replicas', text('replicas', 'numeric'))}
            {field('partition', 'partition', text('partition', 'text', 'auto, or layers 0-2,3-5,6-8'), true)}
            <label className="field check wide">
              <input
                type="checkbox"
                checked={form.recompute}
                onChange={(e) => set('recompute', e.currentTarget.checked)}
              />
              <span>recompute activations in backward (less memory)</span>
            </label>
          </div>
        )}
      </fieldset>
      {check.ok ? (
        <p className="muted shape">{describeShape(check.config)}</p>
      ) : (
        formWide.map((m) => (
          <p key={m} className="error-text" role="alert">
            {m}
          </p>
        ))
      )}
      <div className="buttons">
        <button
          type="submit"
          className="primary"
          disabled={locked || !check.ok}
          title={check.ok ? undefined : 'fix the marked fields first'}
        >
          Start
        </button>
        <button type="button" onClick={props.onPause} disabled={props.phase !== 'running'}>
          Pause
        </button>
        <button type="button" onClick={props.onResume} disabled={props.phase !== 'paused'}>
          Resume
        </button>
        <button type="button" className="danger" onClick={props.onStop} disabled={!isActive(props.phase)}>
          Stop
        </button>
      </div>
    </form>
  );
}
