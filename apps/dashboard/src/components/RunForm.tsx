import { useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { DATASETS, toWireError, type RunConfig } from '@peertrain/protocol';
import type { PeerView, PlanPreview, RunPhase } from '@peertrain/coordinator';
import { BackendOptions } from '@peertrain/ui';
import { shortPeerId } from '../peerLabels.ts';
import { MethodFields, methodFieldsShown } from './MethodFields.tsx';
import { PlanEditor } from './PlanEditor.tsx';
import {
  checkPartition,
  editorRanges,
  equalShardCounts,
  partitionText,
  previewKey,
  withShardCount,
} from './planEdit.ts';
import {
  STRATEGY_CHOICES,
  checkRunForm,
  formSpares,
  defaultMicroBatches,
  SCHEDULE_CHOICES,
  describeShape,
  initialRunForm,
  isPipelined,
  issuesByField,
  presetLayerNames,
  withCompress,
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
  | 'workers'
  | 'steps'
  | 'batch'
  | 'lr'
  | 'momentum'
  | 'seed'
  | 'microBatches'
  | 'virtualStages'
  | 'replicas'
  | 'partition';
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
const PIPELINE_FIELDS: readonly RunFormField[] = [
  'schedule',
  'virtualStages',
  'microBatches',
  'partition',
  'recompute',
];

/** Stages the form's text fields describe ((workers - spares) / replicas), or null while they do not. */
function formStages(form: RunFormState): number | null {
  const workers = Number(form.workers.trim());
  const replicas = form.strategy === 'hybrid' ? Number(form.replicas.trim()) : 1;
  const stages = (workers - formSpares(form)) / replicas;
  return Number.isInteger(stages) && stages >= 1 && stages <= 64 ? stages : null;
}

/** The run settings with Start / Pause / Resume / Stop; checked as the user types. */
export function RunForm(props: {
  phase: RunPhase;
  /** The room's peers: the first idle ones are the pipeline's stages until a preview says who. */
  peers: readonly PeerView[];
  room: string;
  /** Asks the coordinator for the planner's proposal (profiles replica 0's idle peers). */
  onPlan: (config: RunConfig, signal: AbortSignal) => Promise<PlanPreview>;
  /** True while a run started from this page has not settled. */
  busy: boolean;
  onStart: (config: RunConfig) => void;
  onPause: () => void;
  onResume: () => void;
  onStop: () => void;
  /** What the form starts from (a resumed run's configuration); the defaults when omitted. */
  initial?: RunConfig | undefined;
}) {
  const [form, setForm] = useState<RunFormState>(() => initialRunForm(props.initial));
  const set = <K extends keyof RunFormState>(key: K, value: RunFormState[K]): void => {
    // Typed shard sizes belong to one worker count and train set.
    const reset = key === 'workers' || key === 'dataset' ? { shards: null } : {};
    setForm((f) => ({ ...f, [key]: value, ...reset }));
  };
  const check = useMemo(() => checkRunForm(form), [form]);
  const issues = useMemo(() => issuesByField(check.ok ? [] : check.issues), [check]);
  const locked = props.busy || isActive(props.phase);
  const pipelined = isPipelined(form.strategy);
  // The plan editor draws one range per peer; an interleaved peer holds V of them (typed instead).
  const interleaved = form.schedule === 'interleaved';
  const plan = usePlanEditor(form, check, pipelined && !interleaved, props);
  const startable = check.ok && plan.refused === null;

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (locked || !startable || !check.ok) return;
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
  const shown = new Set<RunFormField | null>([
    ...BASE_FIELDS,
    ...(pipelined ? PIPELINE_FIELDS : []),
    ...methodFieldsShown(form),
  ]);
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
          {/* Wide: the model names with their size do not fit half the form. */}
          {field(
            'model',
            'model',
            choice('model', [
              ['mlp', 'MLP (3 layers)'],
              ['cnn', 'CNN (8 layers)'],
              ['deepMlp', 'deep MLP (9 layers)'],
              ['wideMlp', 'wide MLP (9 layers, 3.9M parameters)'],
            ]),
            true,
          )}
          {field('workers', 'workers', text('workers', 'numeric'))}
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
        <MethodFields
          form={form}
          issues={issues}
          set={set}
          onCompress={(kind) => setForm((f) => withCompress(f, kind))}
          field={field}
        />
        {!pipelined && (
          <ShardEditor
            form={form}
            onChange={(shards) => setForm((f) => ({ ...f, shards }))}
            issues={issues.get('shards') ?? []}
          />
        )}
        {pipelined && (
          <div className="fields pipeline-fields" role="group" aria-label="pipeline settings">
            <h3 className="wide">Pipeline</h3>
            {field('schedule', 'schedule', choice('schedule', SCHEDULE_CHOICES))}
            {interleaved && field('virtual stages V', 'virtualStages', text('virtualStages', 'numeric'))}
            {field(
              'micro-batches',
              'microBatches',
              text('microBatches', 'numeric', `default ${defaultMicroBatches(form.schedule)}`),
            )}
            {form.strategy === 'hybrid' && field('replicas', 'replicas', text('replicas', 'numeric'))}
            {field('partition', 'partition', text('partition', 'text', 'auto, or layers 0-2,3-5,6-8'), true)}
            {interleaved && (
              <p className="wide muted small">
                interleaved: auto, or P × V ranges; chunk c runs on stage c mod P
              </p>
            )}
            {!interleaved && (
              <div className="wide plan-tools">
                <button
                  type="button"
                  onClick={plan.request}
                  disabled={locked || !check.ok || plan.planning}
                  title="profile the layers on the idle peers and show the planner's proposal"
                >
                  {plan.planning ? 'Planning…' : 'Auto-plan'}
                </button>
                {form.partition.trim() !== 'auto' && form.partition.trim() !== '' && (
                  <button type="button" onClick={() => set('partition', 'auto')}>
                    Use auto
                  </button>
                )}
                <span className="muted small">
                  {plan.preview
                    ? form.partition.trim() === 'auto'
                      ? "the planner's proposal"
                      : 'your partition, predicted'
                    : 'drag a boundary, or auto-plan'}
                </span>
              </div>
            )}
            {plan.error && (
              <p className="wide error-text small" role="alert">
                {plan.error}
              </p>
            )}
            {plan.layers && plan.ranges && (
              <div className="wide">
                <PlanEditor
                  layers={plan.layers}
                  ranges={plan.ranges}
                  peers={plan.peers}
                  devices={plan.preview?.devices ?? null}
                  predicted={plan.predicted}
                  refused={plan.refused}
                  peerName={(id) => shortPeerId(id, props.room)}
                  disabled={locked}
                  onChange={(ranges) => set('partition', partitionText(ranges))}
                />
              </div>
            )}
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
      {plan.refused && (
        <p className="error-text refused" role="alert">
          Refused: {plan.refused.message}
        </p>
      )}
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
          disabled={locked || !startable}
          title={startable ? undefined : 'fix the marked fields first'}
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

/** The plan editor's state: layers, the drawn partition, the preview and its check of the partition. */
function usePlanEditor(
  form: RunFormState,
  check: ReturnType<typeof checkRunForm>,
  pipelined: boolean,
  props: { peers: readonly PeerView[]; onPlan: (c: RunConfig, s: AbortSignal) => Promise<PlanPreview> },
) {
  const [held, setHeld] = useState<{ key: string; preview: PlanPreview } | null>(null);
  const [planning, setPlanning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inFlight = useRef<AbortController | null>(null);
  useEffect(() => () => inFlight.current?.abort(), []);
  const presetNames = useMemo(() => presetLayerNames(form.model), [form.model]);
  // A preview describes one shape of run; another shape needs another preview.
  const key = check.ok ? previewKey(check.config) : null;
  const preview = pipelined && held !== null && held.key === key ? held.preview : null;
  const layers = preview ? preview.layers.map((l) => l.name) : presetNames;
  const stages = formStages(form);
  const ranges =
    pipelined && layers && stages !== null
      ? editorRanges(form.partition, layers.length, stages, preview?.plan ?? null)
      : null;
  const judged = preview && ranges ? checkPartition(preview, ranges) : null;
  const idle = props.peers.filter((p) => p.state === 'idle').map((p) => p.peerId);
  const peers = preview
    ? preview.devices.map((d) => d.peerId)
    : Array.from({ length: stages ?? 0 }, (_, s) => idle[s] ?? null);

  const request = (): void => {
    if (!check.ok) return;
    inFlight.current?.abort();
    const ac = new AbortController();
    inFlight.current = ac;
    const config = check.config;
    setPlanning(true);
    setError(null);
    props.onPlan(config, ac.signal).then(
      (p) => {
        if (ac.signal.aborted) return;
        setHeld({ key: previewKey(config), preview: p });
        setPlanning(false);
      },
      (err: unknown) => {
        if (ac.signal.aborted) return;
        const w = toWireError(err);
        setError(`Auto-plan failed: ${w.name}: ${w.message}`);
        setPlanning(false);
      },
    );
  };

  return {
    layers,
    ranges,
    preview,
    peers,
    planning,
    error,
    predicted: judged?.ok ? judged.plan : null,
    refused: judged && !judged.ok ? { stage: judged.stage, message: judged.message } : null,
    request,
  };
}

/** Data parallelism: each worker's shard size in samples (the last worker takes the rest). */
function ShardEditor(props: {
  form: RunFormState;
  onChange: (shards: string[] | null) => void;
  issues: readonly string[];
}) {
  const { form } = props;
  const workers = Number(form.workers.trim());
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= 64)) return null;
  const train = DATASETS[form.dataset].train;
  const counts = form.shards ?? equalShardCounts(form.dataset, workers).map(String);
  const total = counts.reduce((a, c) => a + (Number(c) || 0), 0);
  return (
    <div className="fields pipeline-fields shard-fields" role="group" aria-label="data shards">
      <h3 className="wide">
        Data shards
        <button
          type="button"
          className="link"
          onClick={() => props.onChange(null)}
          disabled={form.shards === null}
        >
          equal
        </button>
      </h3>
      <div className="wide shard-row">
        {counts.map((c, r) => (
          <label key={r} className="shard">
            <span>w{r}</span>
            <input
              inputMode="numeric"
              aria-label={`samples of worker ${r}`}
              value={c}
              readOnly={r === counts.length - 1 && counts.length > 1}
              onChange={(e) => props.onChange(withShardCount(counts, r, e.currentTarget.value, train))}
            />
          </label>
        ))}
      </div>
      <small className="wide muted">
        {total.toLocaleString('en-US')} of {train.toLocaleString('en-US')} samples
        {form.shards === null
          ? `, equal shards${train > total ? ` (${(train - total).toLocaleString('en-US')} left over)` : ''}`
          : counts.length > 1
            ? '; the last worker takes the rest'
            : ''}
      </small>
      {props.issues.map((m) => (
        <small key={m} className="wide error-text">
          {m}
        </small>
      ))}
    </div>
  );
}
