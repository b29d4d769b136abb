// `npm test`: typecheck, lint, format check, then every vitest test (unit and end-to-end).
// Each static check counts as one test; the summary lands in .artifacts/test-summary.json
// for .ci/run's final "N passed, N failed" line. Extra arguments go to vitest.
//
// Order of work:
//   1. the web app is built (once, so no two runs build dist/ together);
//   2. the timing-bound end-to-end file (QUIET_FILES) runs alone;
//   3. at once: the static checks then the unit project (one worker), and the end-to-end files
//      from a queue, longest first, each in its own vitest run, two at a time (E2E_WIDTH).
// A session mostly waits on page loads, dials and WebRTC handshakes: one at a time left a 2-core
// machine about 40% idle, so sessions run side by side. Fixed lanes ended far apart (the unit lane
// 6 minutes before the longest); the queue keeps both cores busy to the end. Every run's output
// is printed when it ends.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const extra = process.argv.slice(2);
const E2E_DIR = '.artifacts/e2e';
rmSync(E2E_DIR, { recursive: true, force: true });
mkdirSync(E2E_DIR, { recursive: true });

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
  // One unit-test worker: every core it leaves free goes to the tabs of the end-to-end runs.
  ...(project === 'unit' ? ['--maxWorkers=1'] : []),
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${json}`,
  ...extra,
];

/** Steps that passed or failed: { name, ok, json? } (a vitest step's results are in its json). */
const results = [];

// Measured: the shaped link's UDP throughput read 1.5 Mbit/s for a 5 Mbit/s rate at load 15-19
// (the receiver, not the link, set it), so it runs before anything else starts.
const QUIET_FILES = ['packages/harness/src/link.e2e.test.ts'];
// Two sessions at a time, also after the unit lane: with three, a WebRTC dial between two tabs of a
// 4-tab pipeline session did not open within its 20 s twice in a row (load 10-12).
const E2E_WIDTH = 2;
// The queue's order, longest first (seconds in the last full run beside the others); files not
// named here go after these, in one vitest run together (each takes under 30 s).
const LONGEST_FIRST = [
  'apps/cli/src/train.e2e.test.ts', // ~450
  'apps/cli/src/pipeline.e2e.test.ts', // ~400
  'apps/cli/src/elastic.e2e.test.ts', // ~240
  'apps/cli/src/pipeline-elastic.e2e.test.ts', // ~160
  'apps/dashboard/src/dashboard.e2e.test.ts', // ~100
  'apps/worker/src/phone.e2e.test.ts', // ~80
  'apps/cli/src/freeze.e2e.test.ts', // ~115
  'apps/dashboard/src/reload.e2e.test.ts', // ~80 (two 60-step runs each); in the group it ran last, alone
  'packages/engine/src/browser.e2e.test.ts', // ~50
];

function e2eFiles() {
  const found = [];
  for (const top of ['apps', 'packages']) {
    for (const entry of readdirSync(top, { recursive: true })) {
      const path = join(top, String(entry));
      if (path.endsWith('.e2e.test.ts') && !path.includes('node_modules')) found.push(path);
    }
  }
  return found.sort();
}

/** The queue: one item per long file, then the rest together. */
function e2eQueue() {
  const all = e2eFiles().filter((f) => !QUIET_FILES.includes(f));
  const long = LONGEST_FIRST.filter((f) => all.includes(f));
  const rest = all.filter((f) => !long.includes(f));
  return [...long.map((f) => [f]), ...(rest.length > 0 ? [rest] : [])];
}

/** Runs vitest on `files` (e2e project) with its output collected and printed at the end. */
async function vitestFiles(name, files) {
  const json = join(E2E_DIR, `${name.replace(/[^a-z0-9.-]+/gi, '_')}.json`);
  const args = [...vitestArgs('e2e', json), ...files];
  const out = [];
  const started = Date.now();
  // Niced: a session's many Chromium processes would otherwise take the unit lane's core (the
  // scheduler shares by thread), and its one thread took 14 minutes for 1 minute's static checks.
  const ok = await run('nice', ['-n', '10', 'npx', ...args], out);
  const s = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n==== vitest ${name} (${s} s): npx ${args.join(' ')} ====`);
  process.stdout.write(Buffer.concat(out));
  results.push({ name: `vitest ${name}`, ok, json });
}

/** The static checks side by side, then the unit project; the output is printed at the end. */
async function staticThenUnit() {
  const out = [];
  const steps = [
    ['typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']],
    ['lint', 'npx', ['eslint', '.']],
    ['format', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']],
  ];
  // The three at once (each mostly one thread), each output kept apart.
  const outs = await Promise.all(
    steps.map(async ([name, cmd, args]) => {
      const own = [Buffer.from(`\n== ${name}: ${cmd} ${args.join(' ')}\n`)];
      results.push({ name, ok: await run(cmd, args, own) });
      return Buffer.concat(own);
    }),
  );
  out.push(...outs);
  const json = '.artifacts/vitest-unit.json';
  const args = vitestArgs('unit', json);
  out.push(Buffer.from(`\n== vitest unit: npx ${args.join(' ')}\n`));
  results.push({ name: 'vitest unit', ok: await run('npx', args, out), json });
  console.log('\n==== static checks and unit tests ====');
  process.stdout.write(Buffer.concat(out));
  console.log('==== end of static checks and unit tests ====\n');
}

/** Drains the queue with `width()` runs at a time. */
async function drain(queue, width) {
  const running = new Set();
  let next = 0;
  const label = (files) => (files.length === 1 ? files[0] : `e2e (${files.length} files)`);
  for (;;) {
    while (next < queue.length && running.size < width()) {
      const files = queue[next++];
      const p = vitestFiles(label(files), files).finally(() => running.delete(p));
      running.add(p);
    }
    if (running.size === 0) return;
    await Promise.race(running);
  }
}

/** Builds dist/ when its sources changed (the sessions would otherwise race to build it). */
const build = () =>
  run('node', [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    "await (await import('@peertrain/harness')).ensureBuilt({ log: (l) => console.log(l) });",
  ]);

const started = Date.now();
rmSync('.artifacts/vitest-unit.json', { force: true });
const built = await build();
results.push({ name: 'build', ok: built });
if (built) {
  await vitestFiles('quiet', QUIET_FILES);
  await Promise.all([staticThenUnit(), drain(e2eQueue(), () => E2E_WIDTH)]);
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'); // colour codes in messages

// Failures are repeated just above the final count: CI logs are often read from the tail only.
const failures = [];
let passed = 0;
let failed = 0;
for (const r of results) {
  if (!r.json) {
    if (r.ok) passed += 1;
    else {
      failed += 1;
      failures.push(`FAILED ${r.name}`);
    }
    continue;
  }
  if (!existsSync(r.json)) {
    failed += 1;
    failures.push(`FAILED ${r.name}: no results (${r.json} missing)`);
    continue;
  }
  const v = JSON.parse(readFileSync(r.json, 'utf8'));
  passed += v.numPassedTests;
  failed += v.numFailedTests + (v.numTotalTests === 0 ? 1 : 0);
  if (!r.ok && v.numFailedTests === 0) failed += 1; // a suite failed to load
  for (const file of v.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'failed') continue;
      failures.push(`FAILED ${file.name.replace(process.cwd() + '/', '')} > ${t.fullName}`);
      const msg = (t.failureMessages ?? []).join('\n').replace(ANSI, '');
      const lines = msg.split('\n').filter((l) => !/^\s+at /.test(l) && l.trim() !== '');
      // The error's own words come first; an end-to-end check appends its process's stderr tail.
      const shown = lines.length <= 40 ? lines : [...lines.slice(0, 25), '...', ...lines.slice(-12)];
      failures.push(...shown);
    }
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
      failures.push(`FAILED to load ${file.name}: ${String(file.message ?? '').slice(0, 600)}`);
    }
  }
}
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
writeFileSync(
  '.artifacts/test-summary.json',
  JSON.stringify(
    { passed, failed, minutes: Number(minutes), steps: results.map(({ name, ok }) => ({ name, ok })) },
    null,
    2,
  ),
);
console.log(`\n${results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}`).join('\n')}`);
if (failures.length > 0) console.log(`\n${failures.join('\n')}\n`);
console.log(`npm test took ${minutes} min`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
