import { ConfigError } from '@peertrain/protocol';
import { PARTS } from './report.ts';
import type { BenchSettings, Part } from './report.ts';

export const HELP = `Usage: npm run bench -- [--quick] [--only raw,allreduce,train] [--out DIR]

Measures data-channel throughput, ring all-reduce bus bandwidth (N = 2, 3, 4 tabs) and the
training step split, in headless Chromium inside a private network namespace. Writes
DIR/<name>.json and DIR/<name>.md (default DIR: bench/results) and prints the table.

  --quick        small sizes, one repetition: a smoke check (results named *-quick)
  --only LIST    parts to run, comma-separated: raw, allreduce, train (default: all)
  --out DIR      where to write the results
  -h, --help     this text
`;

export interface BenchArgs {
  quick: boolean;
  parts: Part[];
  outDir: string | null;
  help: boolean;
}

function isPart(s: string): s is Part {
  return (PARTS as readonly string[]).includes(s);
}

/** argv (without node and the script) in, BenchArgs out; ConfigError lists every problem. */
export function parseArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { quick: false, parts: [...PARTS], outDir: null, help: false };
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
        // Run order stays raw, allreduce, train whatever order was given.
        args.parts = PARTS.filter((p) => list.includes(p));
        break;
      }
      case '--out': {
        const v = value();
        if (v === undefined || v === '') issues.push('--out needs a directory');
        else args.outDir = v;
        break;
      }
      default:
        issues.push(`unknown argument "${a}"`);
    }
  }
  if (issues.length > 0) throw new ConfigError('invalid arguments', issues);
  return args;
}

const ELEMS_64K = 65_536;

/** Sizes of a full run (about 3 minutes here) or of a --quick smoke check. */
export function settingsFor(args: Pick<BenchArgs, 'quick' | 'parts'>): BenchSettings {
  if (args.quick) {
    return {
      quick: true,
      parts: args.parts,
      rawBytes: 4 * 2 ** 20,
      allReduceBytes: 2 ** 20,
      warmup: 1,
      reps: 1,
      ns: [2, 3],
      bucketElems: ELEMS_64K,
      sweepBuckets: [ELEMS_64K, 4 * ELEMS_64K],
      trainSteps: 10,
    };
  }
  return {
    quick: false,
    parts: args.parts,
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
  };
}
