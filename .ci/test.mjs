// `npm test`: typecheck, lint, format check, then every vitest test (unit and end-to-end).
// Each static check counts as one test; the summary lands in .artifacts/test-summary.json
// for .ci/run's final "N passed, N failed" line. Extra arguments go to vitest.
//
// Three lanes run at once after the web app is built (once, so no two lanes build dist/ together):
//   e2e       the end-to-end files but the pipeline ones (real Chromium sessions, one file after
//             another), output streamed;
//   pipelines the pipeline and elastic sessions (apps/cli/src/{pipeline,elastic}.e2e.test.ts) and
//             the dashboard's;
//   unit      the static checks, then the unit project.
// A session mostly waits on page loads, dials and WebRTC handshakes: one lane of them left a
// 2-core machine about 40% idle. One after the other the suite took 24 minutes here, in two lanes
// 22.9; the last two print their output when they end.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';

mkdirSync('.artifacts', { recursive: true });
const extra = process.argv.slice(2);

/** Runs a command; its output goes to the terminal, or into `buffer` when one is given. */
function run(cmd, args, buffer) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: buffer ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    if (buffer) {
      child.stdout.on('data', (d) => buffer.push(d));
      child.stderr.on('data', (d) => buffer.push(d));
    }
    child.on('close', (code) => resolve(code === 0));
    child.on('error', (err) => {
      buffer?.push(Buffer.from(`${cmd}: ${err.message}\n`));
      resolve(false);
    });
  });
}

const vitestArgs = (project, json) => [
  'vitest',
  'run',
  '--project',
  project,
  // One unit-test worker: the unit lane is not the longer one, and every core it leaves free
  // goes to the tabs of the end-to-end lane.
  ...(project === 'unit' ? ['--maxWorkers=1'] : []),
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${json}`,
  ...extra,
];

const results = [];
const jsons = {
  unit: '.artifacts/vitest-unit.json',
  e2e: '.artifacts/vitest-e2e.json',
  pipelines: '.artifacts/vitest-e2e-pipelines.json',
};
// The second end-to-end lane's files, about as long as the rest together (measured: 841 s against
// 1,366 s before the elastic sessions moved over); the e2e lane runs every other end-to-end file.
const PIPELINE_FILES = [
  'apps/cli/src/pipeline.e2e.test.ts',
  'apps/cli/src/elastic.e2e.test.ts',
  'apps/dashboard/src/dashboard.e2e.test.ts',
];
for (const f of Object.values(jsons)) rmSync(f, { force: true });

/** Runs `steps` one after the other with their output collected, printed together at the end. */
async function bufferedLane(title, steps) {
  const out = [];
  for (const [name, cmd, args] of steps) {
    out.push(Buffer.from(`\n== ${name}: ${cmd} ${args.join(' ')}\n`));
    results.push({ name, ok: await run(cmd, args, out) });
  }
  console.log(`\n==== ${title} (run beside the end-to-end tests) ====`);
  process.stdout.write(Buffer.concat(out));
  console.log(`==== end of ${title} ====\n`);
}

const staticThenUnit = () =>
  bufferedLane('static checks and unit tests', [
    ['typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']],
    ['lint', 'npx', ['eslint', '.']],
    ['format', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']],
    ['vitest unit', 'npx', vitestArgs('unit', jsons.unit)],
  ]);

const pipelines = () =>
  bufferedLane('pipeline, elastic and dashboard end-to-end tests', [
    ['vitest pipelines', 'npx', [...vitestArgs('e2e', jsons.pipelines), ...PIPELINE_FILES]],
  ]);

async function endToEnd() {
  const args = [...vitestArgs('e2e', jsons.e2e), ...PIPELINE_FILES.flatMap((f) => ['--exclude', f])];
  console.log(`\n== vitest e2e: npx ${args.join(' ')}`);
  results.push({ name: 'vitest e2e', ok: await run('npx', args) });
}

/** Builds dist/ when its sources changed (the lanes' sessions would otherwise race to build it). */
const build = () =>
  run('node', [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    "await (await import('@peertrain/harness')).ensureBuilt({ log: (l) => console.log(l) });",
  ]);

const started = Date.now();
const built = await build();
results.push({ name: 'build', ok: built });
if (built) await Promise.all([staticThenUnit(), pipelines(), endToEnd()]);

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'); // colour codes in messages

// Failures are repeated just above the final count: CI logs are often read from the tail only.
const failures = [];
const isVitest = (r) => r.name.startsWith('vitest');
let passed = results.filter((r) => !isVitest(r) && r.ok).length;
let failed = results.filter((r) => !isVitest(r) && !r.ok).length;
for (const [project, json] of Object.entries(jsons)) {
  const vitestOk = results.find((r) => r.name === `vitest ${project}`)?.ok ?? false;
  if (!existsSync(json)) {
    failed += 1;
    failures.push(`FAILED vitest ${project}: no results (${json} missing)`);
    continue;
  }
  const v = JSON.parse(readFileSync(json, 'utf8'));
  passed += v.numPassedTests;
  failed += v.numFailedTests + (v.numTotalTests === 0 ? 1 : 0);
  if (!vitestOk && v.numFailedTests === 0) failed += 1; // a suite failed to load
  for (const file of v.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'failed') continue;
      failures.push(`FAILED ${file.name.replace(process.cwd() + '/', '')} > ${t.fullName}`);
      const msg = (t.failureMessages ?? []).join('\n').replace(ANSI, '');
      const lines = msg.split('\n').filter((l) => !/^\s+at /.test(l));
      failures.push(...lines.filter((l) => l.trim() !== '').slice(-12));
    }
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
      failures.push(`FAILED to load ${file.name}: ${String(file.message ?? '').slice(0, 600)}`);
    }
  }
}
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
writeFileSync(
  '.artifacts/test-summary.json',
  JSON.stringify({ passed, failed, minutes: Number(minutes), steps: results }, null, 2),
);
console.log(`\n${results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}`).join('\n')}`);
if (failures.length > 0) console.log(`\n${failures.join('\n')}\n`);
console.log(`npm test took ${minutes} min`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
