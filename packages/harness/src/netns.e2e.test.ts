import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './build.ts';
import { spawnIsolated, waitForExit } from './netns.ts';

// reexecIsolated from the outside: a program that re-runs itself in the namespace, whose inner
// half prints what it sees and then exits with a chosen code or waits for a signal.
const harness = join(REPO_ROOT, 'packages/harness/src/index.ts');
const PROGRAM = `
import { execFileSync } from 'node:child_process';
import { insideIsolatedNetwork, reexecIsolated } from ${JSON.stringify(harness)};
const mode = process.argv[2];
if (!insideIsolatedNetwork()) {
  process.exitCode = await reexecIsolated();
} else {
  const routes = execFileSync('ip', ['route']).toString().trim();
  console.log(JSON.stringify({ inside: true, routes, ppid: process.ppid }));
  if (mode === 'exit7') process.exit(7);
  process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(42); });
  console.log('waiting');
  setTimeout(() => process.exit(0), 20000);
}
`;

function run(dir: string, mode: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(dir, 'prog.mts'), mode], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

describe('reexecIsolated', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peertrain-netns-'));
    await writeFile(join(dir, 'prog.mts'), PROGRAM);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the program in the namespace and propagates its exit code', async () => {
    const { child, output } = run(dir, 'exit7');
    expect(await waitForExit(child)).toBe(7);
    const info = JSON.parse(output().split('\n')[0] ?? '') as {
      inside: boolean;
      routes: string;
      ppid: number;
    };
    expect(info.inside).toBe(true);
    expect(info.routes).toContain('default via 10.213.0.2 dev v0');
    expect(info.ppid).toBe(child.pid); // unshare and sh exec: the inner node is the direct child
  }, 40_000);

  it('forwards SIGTERM to the inner program', async () => {
    const { child, output } = run(dir, 'wait');
    await expect.poll(output, { timeout: 30_000 }).toContain('waiting');
    child.kill('SIGTERM');
    expect(await waitForExit(child)).toBe(42);
    expect(output()).toContain('got SIGTERM');
  }, 60_000);
});

describe('spawnIsolated', () => {
  // Chromium fails its loads with ERR_NETWORK_CHANGED when an address changes under it: the
  // namespace must be settled when the command starts. The kernel's IPv6 link-local addresses
  // arrived 1-2 s after the links came up; the command sees the same addresses now and 3 s later.
  it('hands over a settled network: the addresses do not change after the command starts', async () => {
    const child = spawnIsolated(
      'sh',
      ['-c', 'ip -o addr | sort; echo ==; sleep 3; ip -o addr | sort; ip -o link show v0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await waitForExit(child), out).toBe(0);
    const [before = '', after = ''] = out.split('==\n');
    expect(before).toContain('inet 10.213.0.1/24');
    expect(after.startsWith(before), out).toBe(true);
    expect(after).toMatch(/v0@v1: <[^>]*LOWER_UP/); // the link is up with its carrier
  }, 40_000);
});
