import type { Browser } from 'playwright-core';
import { parseRunReport } from '@peertrain/protocol';
import type { ComputePlace, RunConfigInput, RunReport } from '@peertrain/protocol';
import { exposedComm, overlapExposureCheck } from './exposed-comm.ts';
import { describeError, openHostedRoom } from './hosted.ts';
import { median } from './metrics.ts';
import { WIDE_MLP_PARTITIONS } from './pipeline-cases.ts';
import { fmt, markdownTable } from './table.ts';

// Part 9 (`--only threads`): where a worker tab computes. The same runs with every worker tab's
// engine on its page's thread (the default) and in a thread of its own (`?compute=thread`, the
// CLI's --compute thread: a dedicated Worker, compute-thread.ts), in one bench process. On the
// page's thread the links' messages wait while a step's kernels run; in a thread of their own
// they do not, but every step then crosses a thread boundary (parameters in, gradients out) and
// the tab has two busy threads. Each compute place gets a hosted room of its own (its worker tabs
// opened with the parameter); the rooms alternate, page first then thread, and the other way round
// on the next repeat, so that load that comes and goes falls on both.

export interface ThreadCase {
  /** Stable key in the JSON. */
  id: string;
  label: string;
  config: RunConfigInput;
  /** Trace the run: the communication not hidden behind compute (exposed-comm.ts). */
  traced: boolean;
}

export interface ThreadsSettings {
  /** Rounds of (page, thread) rooms. */
  repeats: number;
  cases: ThreadCase[];
}

const COMMON = { backend: 'wasm', seed: 42, evalEvery: 0, dataset: 'mnist' } as const;
const PLACES: readonly ComputePlace[] = ['page', 'thread'];

/**
 * One tab alone (what crossing to the thread costs a step); the CNN on 4 tabs synchronous, and
 * overlapped with 2048-value buckets (the scaling part's overlap row); the MLP's DiLoCo H = 20
 * with the outer step overlapped on 4 tabs (the scaling part's diloco-20-overlap), and filling its
 * waits with int8 exchange (diloco-20-fill); 1F1B over 4
 * stages of wideMlp at M = 8 (the pipeline part's headline case). Quick: fewer steps, one round.
 */
export function threadsSettings(quick: boolean): ThreadsSettings {
  const k = quick ? 0.25 : 1;
  const steps = (n: number): number => Math.max(4, Math.round(n * k));
  const data = { ...COMMON, strategy: 'data', sync: 'allreduce' } as const;
  const cnn = { ...data, model: 'cnn', workers: 4, batch: 24, steps: steps(80) } as const;
  return {
    repeats: quick ? 1 : 2,
    cases: [
      {
        id: 'mlp-1',
        label: 'MLP, 1 tab, batch 96',
        config: { ...data, model: 'mlp', workers: 1, batch: 96, steps: steps(300) },
        traced: false,
      },
      { id: 'cnn-sync-4', label: 'CNN, 4 tabs, sync all-reduce', config: cnn, traced: true },
      {
        id: 'cnn-overlap-4',
        label: 'CNN, 4 tabs, overlapped all-reduce',
        config: { ...cnn, overlap: true, bucketElems: 2048 },
        traced: true,
      },
      {
        id: 'diloco-20-overlap-4',
        label: 'MLP, 4 tabs, diloco H=20, outer step overlapped',
        config: {
          ...{ ...data, sync: 'diloco', model: 'mlp', workers: 4, batch: 24, steps: steps(300) },
          ...{ innerSteps: 20, overlapOuter: true, outerMomentum: 0.5 },
        },
        traced: false,
      },
      {
        id: 'diloco-20-fill-4',
        label: 'MLP, 4 tabs, diloco H=20, overlapped, fill waits, int8',
        config: {
          ...{ ...data, sync: 'diloco', model: 'mlp', workers: 4, batch: 24, steps: steps(300) },
          ...{ innerSteps: 20, overlapOuter: true, outerMomentum: 0.5, fillWaits: true, compress: 'int8' },
        },
        traced: false,
      },
      {
        id: '1f1b-4x8',
        label: '1F1B, 4 stages, M=8 (wideMlp)',
        config: {
          ...{ ...COMMON, strategy: 'pipeline', schedule: '1f1b', model: 'wideMlp', dataset: 'synthetic' },
          ...{
            workers: 4,
            batch: 128,
            microBatches: 8,
            partition: WIDE_MLP_PARTITIONS[4]!,
            steps: steps(12),
          },
        },
        traced: false,
      },
    ],
  };
}

export interface ThreadRow {
  caseId: string;
  label: string;
  compute: ComputePlace;
  /** 0-based round of rooms. */
  repeat: number;
  ok: boolean;
  error?: string;
  samplesPerSec?: number;
  stepMsMedian?: number;
  /** Mean over workers of compute / (compute + communication + idle). */
  computeUtilization?: number;
  /** Traced cases: communication not hidden behind compute, and past the slowest compute, ms/step. */
  exposedCommMsPerStep?: number;
  criticalCommMsPerStep?: number;
  /** Pipelines: the coordinator's measured idle fraction. */
  bubble?: number;
  /** Every worker said its engine computed where the room asked. */
  placed?: boolean;
}

export interface ThreadsPart {
  settings: ThreadsSettings;
  rows: ThreadRow[];
}

/** Steps left out of the exposed-communication figure (the scaling part's). */
const EXPOSED_SKIP_STEPS = 3;

/** A run's row from its report and trace (pure). */
export function threadRow(
  c: ThreadCase,
  compute: ComputePlace,
  repeat: number,
  report: RunReport,
  trace: unknown,
): ThreadRow {
  const exposed = c.traced && trace !== null ? exposedComm(trace, EXPOSED_SKIP_STEPS) : null;
  const bubble = report.pipeline?.bubbleMeasured;
  return {
    ...{ caseId: c.id, label: c.label, compute, repeat, ok: true },
    ...{ samplesPerSec: report.samplesPerSec, stepMsMedian: report.stepMsMedian },
    ...(report.computeUtilization !== undefined ? { computeUtilization: report.computeUtilization } : {}),
    ...(exposed
      ? {
          exposedCommMsPerStep: exposed.exposedMsPerStep,
          criticalCommMsPerStep: exposed.criticalMsPerStep,
        }
      : {}),
    ...(bubble !== undefined ? { bubble } : {}),
    placed: report.workers.every((w) => (w.computeThread === true) === (compute === 'thread')),
  };
}

export interface ThreadsOptions {
  browser: Browser;
  baseUrl: string;
  settings: ThreadsSettings;
  nonce: string;
  oneProfile?: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** One run's limit: the slowest case (the CNN on 4 tabs) takes about 15 s here. */
const RUN_TIMEOUT_MS = 180_000;
const SETUP_TIMEOUT_MS = 120_000;

export async function measureThreads(opts: ThreadsOptions): Promise<ThreadsPart> {
  const { settings: s, log, signal } = opts;
  const workers = Math.max(...s.cases.map((c) => c.config.workers ?? 1));
  const rows: ThreadRow[] = [];
  for (let repeat = 0; repeat < s.repeats; repeat++) {
    for (const compute of repeat % 2 === 0 ? PLACES : [...PLACES].reverse()) {
      signal?.throwIfAborted();
      const room = `${opts.nonce}-thr-${compute}-${repeat}`;
      log(
        `threads: room ${room}, ${workers} worker tabs computing on ${compute === 'page' ? 'the page' : 'a thread'}`,
      );
      const hosted = await openHostedRoom({
        ...{ browser: opts.browser, baseUrl: opts.baseUrl, nonce: opts.nonce, room, workers, compute },
        ...{ setupTimeoutMs: SETUP_TIMEOUT_MS, oneProfile: opts.oneProfile === true, log },
        ...(signal ? { signal } : {}),
      });
      try {
        for (const c of s.cases) {
          signal?.throwIfAborted();
          const name = `threads ${c.id} ${compute} #${repeat + 1}`;
          try {
            const res = await hosted.run({
              config: c.config,
              waitMs: 60_000,
              timeoutMs: RUN_TIMEOUT_MS,
              trace: c.traced,
              progress: false,
            });
            const row = threadRow(c, compute, repeat, parseRunReport(res.report), res.trace);
            rows.push(row);
            log(
              `${name}: ${fmt(row.samplesPerSec, 0)} samples/s, step ${fmt(row.stepMsMedian, 1)} ms, ` +
                `util ${fmt(row.computeUtilization, 2)}` +
                (row.exposedCommMsPerStep !== undefined
                  ? `, exposed ${fmt(row.exposedCommMsPerStep, 1)} ms/step`
                  : '') +
                (row.bubble !== undefined ? `, bubble ${fmt(row.bubble, 3)}` : ''),
            );
          } catch (err) {
            signal?.throwIfAborted();
            const error = describeError(err);
            rows.push({ caseId: c.id, label: c.label, compute, repeat, ok: false, error });
            log(`${name} failed: ${error}`);
          }
        }
      } finally {
        await hosted.close();
      }
    }
  }
  return { settings: s, rows };
}

/** The median of the finished rows' `key` for one case and place; NaN without any. */
export function medianOf(
  rows: readonly ThreadRow[],
  caseId: string,
  compute: ComputePlace,
  key:
    | 'samplesPerSec'
    | 'stepMsMedian'
    | 'computeUtilization'
    | 'exposedCommMsPerStep'
    | 'criticalCommMsPerStep'
    | 'bubble',
): number {
  return median(
    rows
      .filter((r) => r.ok && r.caseId === caseId && r.compute === compute)
      .map((r) => r[key])
      .filter((x): x is number => x !== undefined && Number.isFinite(x)),
  );
}

/** The report's error lines: runs that failed, and runs whose workers computed elsewhere than asked. */
export function threadsErrors(p: ThreadsPart): string[] {
  return p.rows.flatMap((r) => {
    const name = `threads ${r.caseId} ${r.compute} #${r.repeat + 1}`;
    if (!r.ok) return [`${name}: ${r.error ?? 'failed'}`];
    return r.placed === false ? [`${name}: a worker did not compute where its room asked`] : [];
  });
}

/**
 * Issue 10's overlap check (exposed-comm.ts) per compute place, from the medians of the CNN's
 * synchronous and overlapped cases: with the engine in a thread the links move during backward.
 */
export function overlapChecks(p: ThreadsPart): string[] {
  return PLACES.flatMap((compute) => {
    const row = (caseId: string, method: string) => {
      const m = (k: 'exposedCommMsPerStep' | 'criticalCommMsPerStep'): number | null => {
        const v = medianOf(p.rows, caseId, compute, k);
        return Number.isFinite(v) ? v : null;
      };
      return {
        model: 'cnn',
        tabs: 4,
        method,
        exposedCommMsPerStep: m('exposedCommMsPerStep'),
        criticalCommMsPerStep: m('criticalCommMsPerStep'),
      };
    };
    const check = overlapExposureCheck([row('cnn-sync-4', 'allreduce'), row('cnn-overlap-4', 'overlap')]);
    if (!check) return [];
    const verdict = check.pass === null ? 'not measured' : check.pass ? 'yes' : 'NO';
    return [
      `- engine on ${compute === 'page' ? "the page's thread" : 'a thread of its own'}: ${check.what}: ${check.value} (${verdict})`,
    ];
  });
}

/** The part's markdown: per case, the medians of each compute place and thread over page. */
export function renderThreads(p: ThreadsPart): string[] {
  const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${fmt(a / b, 2)}x` : '-');
  const lines: string[][] = [];
  for (const c of p.settings.cases) {
    for (const compute of PLACES) {
      const m = (k: Parameters<typeof medianOf>[3]): number => medianOf(p.rows, c.id, compute, k);
      const runs = p.rows.filter((r) => r.caseId === c.id && r.compute === compute);
      const page = (k: Parameters<typeof medianOf>[3]): number => medianOf(p.rows, c.id, 'page', k);
      lines.push([
        c.label,
        compute === 'page' ? "page's thread" : 'own thread',
        `${runs.filter((r) => r.ok).length}/${runs.length}`,
        fmt(m('samplesPerSec'), 0),
        compute === 'page' ? '-' : ratio(m('samplesPerSec'), page('samplesPerSec')),
        fmt(m('stepMsMedian'), 1),
        fmt(m('computeUtilization'), 2),
        c.traced ? fmt(m('exposedCommMsPerStep'), 1) : '-',
        c.traced ? fmt(m('criticalCommMsPerStep'), 1) : '-',
        c.config.strategy === 'pipeline' ? fmt(m('bubble'), 3) : '-',
      ]);
    }
  }
  return [
    "## Where a tab computes: the page's thread or a thread of its own",
    '',
    `The same runs with every worker tab's engine on its page's thread and in a dedicated Worker ` +
      `(\`--compute thread\`), ${p.settings.repeats} round(s) of one room each, alternating; ` +
      'medians over the rounds. "exposed": communication not hidden behind compute, ms/step; ' +
      '"past compute": from the slowest rank\'s last gradient to the step\'s last communication; ' +
      '"bubble": the pipeline\'s measured idle fraction. Compute util.: compute / step time; in a ' +
      "thread, data parallel steps count the thread's own compute (the hops are communication), a " +
      "pipeline stage's the page's wait for each call, hops included.",
    '',
    markdownTable(
      [
        ...['case', 'compute', 'runs', 'samples/s', 'vs page', 'step ms', 'compute util.'],
        ...['exposed ms/step', 'past compute ms/step', 'bubble'],
      ],
      lines,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    ...(() => {
      const checks = overlapChecks(p);
      return checks.length > 0 ? ['', 'Overlap (medians above):', '', ...checks] : [];
    })(),
  ];
}
