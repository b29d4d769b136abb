// `npm test`: typecheck, lint, format check, then every vitest test (unit and end-to-end).
// Each static check counts as one test; the summary lands in .artifacts/test-summary.json
// for .ci/run's final "N passed, N failed" line. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';

mkdirSync('.artifacts', { recursive: true });
const results = [];
function step(name, cmd, args) {
  console.log(`\n== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  const ok = r.status === 0;
  results.push({ name, ok });
  return ok;
}

step('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
step('lint', 'npx', ['eslint', '.']);
step('format', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']);
const json = '.artifacts/vitest.json';
rmSync(json, { force: true });
const vitestOk = step('vitest', 'npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${json}`,
  ...process.argv.slice(2),
]);

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'); // colour codes in messages

// Failures are repeated just above the final count: CI logs are often read from the tail only.
const failures = [];
let passed = results.filter((r) => r.name !== 'vitest' && r.ok).length;
let failed = results.filter((r) => r.name !== 'vitest' && !r.ok).length;
if (existsSync(json)) {
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
} else {
  failed += 1;
}
writeFileSync('.artifacts/test-summary.json', JSON.stringify({ passed, failed, steps: results }, null, 2));
console.log(`\n${results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}`).join('\n')}`);
if (failures.length > 0) console.log(`\n${failures.join('\n')}\n`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
