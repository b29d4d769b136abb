import { ConfigError } from '@peertrain/protocol';
import { DEFAULT_CHROMIUM, parseLinkSpec, splitFlags } from '@peertrain/harness';
import type { LinkSpec } from '@peertrain/harness';
import { DEFAULT_PARTS, PARTS } from './report.ts';
import { scalingMethods, scalingSettings } from './scaling-cases.ts';
import { elasticDilocoSettings, elasticSettings } from './elastic.ts';
import { LINK, linksSettings } from './links.ts';
import { threadsSettings } from './threads.ts';
import { compressPairSettings } from './pipeline-compress.ts';
import type { ScheduleSpec } from './pipeline-cases.ts';
import type { BenchSettings, Part, PipelineSettings } from './report.ts';

export const HELP = `Usage: npm run bench -- [--quick] [--only raw,allreduce,train,pipeline,dashboard,scaling,gpu,elastic,links,threads]
                         [--out DIR]
                         [--gpu] [--chromium PATH] [--chromium-flags "..."] [--one-profile]

Measures data-channel throughput, ring all-reduce bus bandwidth (N = 2, 3, 4 tabs), the
data-parallel training step split and pipeline parallelism (bubble, throughput and activation
memory for P = 2, 3, 4 stages, M = 4, 8, 16 micro-batches, naive / GPipe / 1F1B / interleaved V=2 /
ZB-H1, the cost of recomputation, fp16 activations on the CNN) and the dashboard's frame times (timeline zoom, charts with up to 100,000 steps
taking live steps) and, when asked (--only scaling), time to a target accuracy on 1-4 tabs with
every data-parallel method, in headless Chromium inside a private network namespace. Writes
DIR/<name>.json and DIR/<name>.md (default DIR: bench/results) and prints the tables.

  --quick              small sizes, one repetition: a smoke check (results named *-quick)
  --only LIST          parts to run, comma-separated: raw, allreduce, train, pipeline, dashboard,
                       scaling, elastic, links, threads (default: all but scaling, elastic, links
                       and threads;
                       pipeline alone takes about 22 minutes here, --quick --only pipeline about 5, scaling about 20)
                       elastic: 4 workers, MNIST MLP, 60 steps, --elastic: one undisturbed run and
                       20 runs that each kill one worker at a seeded step (seeds 1-20, --chaos
                       kill=1,seed=S); steps finished and redone, parameter difference, wall time.
                       Then elastic DiLoCo (rounds of 5, SGD inside) under seeds 1-10.
                       With --quick: seeds 1-3 at 20 steps, each
                       links: each case unimpaired, then over ${LINK} (same seed):
                       data parallel MLP on 3 tabs, sync all-reduce (60 steps) and local SGD H=10
                       with int8 (300), and 1F1B over 4 stages (deepMlp, 100); test accuracy,
                       difference, step median, wall time, slowdown, bytes per step. With --quick:
                       10, 20 and 6 steps. Not with --link (it applies its own)
                       threads: the same runs with the worker tabs computing on their page's
                       thread and in a thread of their own (--compute thread), two rounds of a
                       room each, alternating: MLP on 1 tab, CNN on 4 (sync, overlapped), DiLoCo
                       H=20 overlapped on 4 (and filling its waits, int8), 1F1B over 4 stages;
                       samples/s, step, utilization, exposed communication, bubble (about 7
                       minutes; --quick: one round)
  --scaling-quick      the scaling part's smoke check: MLP, 1 and 3 tabs, allreduce, diloco H=20,
                       int8 (under 3 minutes; also implied by --quick)
  --scaling-compression
                       the scaling part's compression table only: fp16, int8, top-1% against
                       fp32, MLP, 3 tabs, 300 steps (about 5 minutes; results *-scaling-compression)
  --pipeline-steps K   steps per pipeline run of the grid (default 6, at least 4: the first 3
                       are warm-up); the recompute pair runs 12
  --scaling-methods LIST
                       the scaling part's time-to-target rows of these methods only (ids as in
                       its JSON: allreduce, overlap, diloco-5, diloco-20, diloco-50,
                       diloco-20-overlap, diloco-20-fill, local-10-int8, int8, topk, powersgd,
                       ps-async), MLP and CNN, 1-4 tabs, no compression table (results
                       *-scaling-methods)
  --one-profile        pipeline and scaling: the coordinator and worker tabs in one browser
                       profile, so they link through the browser (tab links), not WebRTC, as
                       several tabs a person opens do (results named *-one-profile)
  --out DIR            where to write the results
  --link SPEC          impair the tabs' links (UDP) in the namespace for the whole bench, e.g.
                       rate=20mbit,loss=2%,delay=40ms (any subset; delay is one-way)
  --gpu                use this machine's GPU through Vulkan (NVIDIA on Linux): the Chromium flags
                       and driver variables of README "Train on a GPU server"
  --chromium PATH      Chromium executable (default ${DEFAULT_CHROMIUM})
  --chromium-flags "..."
                       extra Chromium flags, space-separated; --enable-features values are merged
  -h, --help           this text
`;

export interface BenchArgs {
  quick: boolean;
  parts: Part[];
  outDir: string | null;
  /** Steps per pipeline run; null: the default of the mode. */
  pipelineSteps: number | null;
  /** --link: impairment applied before the browser starts; null: unimpaired. */
  link: LinkSpec | null;
  /** The scaling part's small plan (also with --quick). */
  scalingQuick: boolean;
  /** The scaling part's compression runs only (no time-to-target rows). */
  scalingCompression: boolean;
  /** --scaling-methods: the scaling part's rows of these method ids only; null: every method. */
  scalingMethods: string[] | null;
  /** --one-profile: hosted rooms' tabs in one browser profile (tab links). */
  oneProfile: boolean;
  help: boolean;
  /** How to launch Chromium (harness launchBrowser). */
  chromium: BrowserArgs;
}

export interface BrowserArgs {
  executablePath: string;
  gpu: boolean;
  /** --chromium-flags, split. */
  flags: string[];
}

function isPart(s: string): s is Part {
  return (PARTS as readonly string[]).includes(s);
}

/** argv (without node and the script) in, BenchArgs out; ConfigError lists every problem. */
export function parseArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = {
    quick: false,
    parts: [...DEFAULT_PARTS],
    outDir: null,
    pipelineSteps: null,
    link: null,
    scalingQuick: false,
    scalingCompression: false,
    scalingMethods: null,
    oneProfile: false,
    help: false,
    chromium: { executablePath: DEFAULT_CHROMIUM, gpu: false, flags: [] },
  };
  const issues: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--scaling-quick':
        args.scalingQuick = true;
        break;
      case '--scaling-compression':
        args.scalingCompression = true;
        break;
      case '--scaling-methods': {
        const list = (value() ?? '').split(',').filter((m) => m !== '');
        const known = scalingMethods('overlap').map((m) => m.id);
        const bad = list.filter((m) => !known.includes(m));
        if (list.length === 0) issues.push(`--scaling-methods needs a list of ${known.join(', ')}`);
        for (const b of bad)
          issues.push(`--scaling-methods: unknown method "${b}" (expected ${known.join(', ')})`);
        args.scalingMethods = list;
        break;
      }
      case '--one-profile':
        args.oneProfile = true;
        break;
      case '-h':
      case '--help':
        args.help = true;
        break;
      case '--only': {
        const list = (value() ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const bad = list.filter((s) => !isPart(s));
        if (list.length === 0) issues.push(`--only needs a list of ${PARTS.join(', ')}`);
        for (const b of bad) issues.push(`--only: unknown part "${b}" (expected ${PARTS.join(', ')})`);
        // Run order stays raw, allreduce, train, pipeline, dashboard, scaling whatever order was given.
        args.parts = PARTS.filter((p) => list.includes(p));
        break;
      }
      case '--pipeline-steps': {
        const v = value();
        const n = Number(v);
        // The coordinator's bubble is the median after 3 warm-up steps: 4 is the least that measures.
        if (v === undefined || !Number.isInteger(n) || n < 4)
          issues.push(`--pipeline-steps needs an integer of at least 4, got ${v ?? 'nothing'}`);
        else args.pipelineSteps = n;
        break;
      }
      case '--gpu':
        args.chromium.gpu = true;
        break;
      case '--chromium': {
        const v = value();
        if (v === undefined || v === '') issues.push('--chromium needs a path');
        else args.chromium.executablePath = v;
        break;
      }
      case '--chromium-flags': {
        const v = value();
        if (v === undefined) issues.push('--chromium-flags needs a list of flags');
        else {
          try {
            args.chromium.flags.push(...splitFlags(v));
          } catch (err) {
            issues.push(`--chromium-flags: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        break;
      }
      case '--out': {
        const v = value();
        if (v === undefined || v === '') issues.push('--out needs a directory');
        else args.outDir = v;
        break;
      }
      case '--link': {
        try {
          args.link = parseLinkSpec(value() ?? '');
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          issues.push(...err.issues.map((issue) => `--link ${issue}`));
        }
        break;
      }
      default:
        issues.push(`unknown argument "${a}"`);
    }
  }
  if (args.link && args.parts.includes('links'))
    issues.push(
      '--link impairs the whole bench; --only links applies its own link to half its runs: drop --link',
    );
  if (issues.length > 0) throw new ConfigError('invalid arguments', issues);
  return args;
}

const ELEMS_64K = 65_536;

/** The schedules of part 4's grid (naive runs apart, at M = 1). */
export const PIPELINE_SCHEDULES: readonly ScheduleSpec[] = [
  { schedule: 'gpipe', virtualStages: 1 },
  { schedule: '1f1b', virtualStages: 1 },
  { schedule: 'interleaved', virtualStages: 2 },
  { schedule: 'zb-h1', virtualStages: 1 },
];

/**
 * Part 4's runs. Full: P = 2, 3, 4 x (naive M = 1, then gpipe, 1f1b, interleaved V = 2 and zb-h1
 * at M = 4, 8, 16) at 6 steps, then 1f1b at P = 4, M = 8 without and with recomputation at 12
 * steps (41 runs), then the CNN's fp32/fp16 activations pair at 120 steps. Quick: P = 4, naive
 * and every schedule at M = 8, 4 steps, the recompute pair at 5, the CNN pair at 20 steps.
 */
export function pipelineSettings(quick: boolean, steps: number | null = null): PipelineSettings {
  const recompute = [{ stages: 4, schedule: '1f1b' as const, microBatches: 8 }];
  const common = {
    // 128 rows: 8 per micro-batch at M = 16, still a real matmul (the whole batch is one step).
    batch: 128,
    warmupSteps: 3,
    recompute,
    headline: { stages: 4, microBatches: 8 },
    schedules: [...PIPELINE_SCHEDULES],
    compress: compressPairSettings(quick),
  };
  return quick
    ? { ...common, stages: [4], microBatches: [8], steps: steps ?? 4, recomputeSteps: 5 }
    : { ...common, stages: [2, 3, 4], microBatches: [4, 8, 16], steps: steps ?? 6, recomputeSteps: 12 };
}

/** Sizes of a full run (about 3 minutes here) or of a --quick smoke check. */
export function settingsFor(
  args: Pick<BenchArgs, 'quick' | 'parts'> &
    Partial<
      Pick<
        BenchArgs,
        'pipelineSteps' | 'scalingQuick' | 'scalingCompression' | 'scalingMethods' | 'oneProfile'
      >
    >,
): BenchSettings {
  const pipeline = pipelineSettings(args.quick, args.pipelineSteps ?? null);
  const scaling = scalingSettings(
    args.quick || args.scalingQuick === true,
    args.scalingCompression === true,
    args.scalingMethods ?? null,
  );
  if (args.quick) {
    return {
      quick: true,
      parts: args.parts,
      ...(args.oneProfile === true ? { oneProfile: true } : {}),
      rawBytes: 4 * 2 ** 20,
      allReduceBytes: 2 ** 20,
      warmup: 1,
      reps: 1,
      ns: [2, 3],
      bucketElems: ELEMS_64K,
      sweepBuckets: [ELEMS_64K, 4 * ELEMS_64K],
      trainSteps: 10,
      pipeline,
      dashboard: { chartPoints: [1_000, 10_000], chartMs: 2_000 },
      scaling,
      elastic: elasticSettings(true),
      elasticDiloco: elasticDilocoSettings(true),
      links: linksSettings(true),
      threads: threadsSettings(true),
    };
  }
  return {
    quick: false,
    parts: args.parts,
    ...(args.oneProfile === true ? { oneProfile: true } : {}),
    rawBytes: 32 * 2 ** 20,
    // Same bytes per worker as the raw test at N = 2 (2(N-1)/N * S = S), so both carry the same
    // fixed start/drain latency and the ratio compares like with like.
    allReduceBytes: 32 * 2 ** 20,
    warmup: 1,
    reps: 3,
    ns: [2, 3, 4],
    bucketElems: 4 * ELEMS_64K,
    sweepBuckets: [ELEMS_64K, 4 * ELEMS_64K, 16 * ELEMS_64K, 64 * ELEMS_64K],
    trainSteps: 60,
    pipeline,
    dashboard: { chartPoints: [1_000, 10_000, 100_000], chartMs: 6_000 },
    scaling,
    elastic: elasticSettings(false),
    elasticDiloco: elasticDilocoSettings(false),
    links: linksSettings(false),
    threads: threadsSettings(false),
  };
}
