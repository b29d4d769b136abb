import { useState, type FormEvent, type ReactNode } from 'react';
import { toWireError, type RunConfig, type WireError } from '@peertrain/protocol';
import type { RunPhase } from '@peertrain/coordinator';
import { BackendOptions } from '../shared/ui.tsx';
import { initialRunForm, runFormToConfig, type RunFormState } from '../runForm.ts';

const ACTIVE: readonly RunPhase[] = ['preparing', 'running', 'paused', 'finishing'];

export function isActive(phase: RunPhase): boolean {
  return ACTIVE.includes(phase);
}

function Field(props: { label: string; children: ReactNode; wide?: boolean }) {
  return (
    <label className={props.wide ? 'field wide' : 'field'}>
      <span>{props.label}</span>
      {props.children}
    </label>
  );
}

/** The run settings with Start / Pause / Resume / Stop. */
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
  const [error, setError] = useState<WireError | null>(null);
  const set = <K extends keyof RunFormState>(key: K, value: RunFormState[K]): void => {
    setForm((f) => ({ ...f, [key]: value }));
  };
  const locked = props.busy || isActive(props.phase);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (locked) return;
    try {
      const config = runFormToConfig(form);
      setError(null);
      props.onStart(config);
    } catch (err) {
      setError(toWireError(err));
    }
  };

  const text = (
    key: 'workers' | 'steps' | 'batch' | 'lr' | 'momentum' | 'seed',
    mode: 'numeric' | 'decimal',
  ) => (
    <input
      inputMode={mode}
      value={form[key]}
      onChange={(e) => set(key, e.currentTarget.value)}
      disabled={locked || (key === 'momentum' && form.optimizer !== 'sgd')}
    />
  );

  type ChoiceKey = 'sync' | 'model' | 'dataset' | 'optimizer';
  const choice = <K extends ChoiceKey>(key: K, options: readonly (readonly [RunFormState[K], string])[]) => (
    <select value={form[key]} onChange={(e) => set(key, e.currentTarget.value as RunFormState[K])}>
      {options.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </select>
  );

  return (
    <form className="card run-form" onSubmit={submit}>
      <h2>Run</h2>
      <fieldset disabled={locked}>
        <div className="fields">
          <Field label="workers">{text('workers', 'numeric')}</Field>
          <Field label="sync">
            {choice('sync', [
              ['allreduce', 'all-reduce'],
              ['ps', 'parameter server'],
            ])}
          </Field>
          <Field label="model">
            {choice('model', [
              ['mlp', 'MLP'],
              ['cnn', 'CNN'],
            ])}
          </Field>
          <Field label="dataset">
            {choice('dataset', [
              ['mnist', 'MNIST'],
              ['synthetic', 'synthetic'],
            ])}
          </Field>
          <Field label="steps">{text('steps', 'numeric')}</Field>
          <Field label="batch / worker">{text('batch', 'numeric')}</Field>
          <Field label="learning rate">{text('lr', 'decimal')}</Field>
          <Field label="optimizer">
            {choice('optimizer', [
              ['sgd', 'SGD'],
              ['adam', 'Adam'],
            ])}
          </Field>
          <Field label="momentum">{text('momentum', 'decimal')}</Field>
          <Field label="seed">{text('seed', 'numeric')}</Field>
          <Field label="backend">
            <select
              value={form.backend}
              onChange={(e) => set('backend', e.currentTarget.value as RunFormState['backend'])}
            >
              <BackendOptions autoLabel="auto (fastest)" />
            </select>
          </Field>
          <label className="field check wide">
            <input
              type="checkbox"
              checked={form.reference}
              onChange={(e) => set('reference', e.currentTarget.checked)}
            />
            <span>also train the single-worker reference and compare</span>
          </label>
        </div>
      </fieldset>
      {error && (
        <p className="error-text" role="alert">
          {error.message}
        </p>
      )}
      <div className="buttons">
        <button type="submit" className="primary" disabled={locked}>
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
