import {
  ConfigError,
  parseRunConfig,
  type BackendName,
  type RunConfig,
  type RunConfigInput,
} from '@peertrain/protocol';

// The run form edits strings (so a half-typed number is not lost); this turns them into a
// validated RunConfig, with one message per bad field.

export interface RunFormState {
  workers: string;
  sync: RunConfig['sync'];
  model: RunConfig['model'];
  dataset: RunConfig['dataset'];
  steps: string;
  batch: string;
  lr: string;
  optimizer: RunConfig['optimizer']['kind'];
  /** SGD momentum; ignored for Adam. */
  momentum: string;
  seed: string;
  backend: 'auto' | BackendName;
  reference: boolean;
}

export function initialRunForm(defaults: RunConfig = parseRunConfig({})): RunFormState {
  return {
    workers: String(defaults.workers),
    sync: defaults.sync,
    model: defaults.model,
    dataset: defaults.dataset,
    steps: String(defaults.steps),
    batch: String(defaults.batch),
    lr: String(defaults.lr),
    optimizer: defaults.optimizer.kind,
    momentum: String(defaults.optimizer.kind === 'sgd' ? defaults.optimizer.momentum : 0.9),
    seed: String(defaults.seed),
    backend: defaults.backend,
    reference: defaults.reference,
  };
}

/** Form -> RunConfig; throws ConfigError listing every bad field. */
export function runFormToConfig(form: RunFormState): RunConfig {
  const issues: string[] = [];
  const num = (field: keyof RunFormState, text: string): number => {
    const t = text.trim();
    const v = t === '' ? NaN : Number(t);
    if (!Number.isFinite(v)) issues.push(`${field}: "${text}" is not a number`);
    return v;
  };
  const input: RunConfigInput = {
    workers: num('workers', form.workers),
    sync: form.sync,
    model: form.model,
    dataset: form.dataset,
    steps: num('steps', form.steps),
    batch: num('batch', form.batch),
    lr: num('lr', form.lr),
    optimizer:
      form.optimizer === 'sgd' ? { kind: 'sgd', momentum: num('momentum', form.momentum) } : { kind: 'adam' },
    seed: num('seed', form.seed),
    backend: form.backend,
    reference: form.reference,
  };
  if (issues.length > 0) throw new ConfigError('invalid run configuration', issues);
  return parseRunConfig(input);
}
