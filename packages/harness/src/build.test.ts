import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILD_HASH_FILE, computeBuildHash, ensureBuilt } from './build.ts';

// A miniature repository with the same layout as this one: two HTML entries and a Vite config
// that imports nothing (the temp dir has no node_modules).
async function fakeRepo(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'peertrain-build-'));
  await mkdir(join(root, 'apps/worker/src'), { recursive: true });
  await mkdir(join(root, 'packages/p/src'), { recursive: true });
  await writeFile(join(root, 'package.json'), '{ "type": "module" }');
  await writeFile(join(root, 'index.html'), '<script type="module" src="/packages/p/src/a.ts"></script>');
  await writeFile(
    join(root, 'apps/worker/index.html'),
    '<script type="module" src="/apps/worker/src/w.ts"></script>',
  );
  await writeFile(join(root, 'packages/p/src/a.ts'), 'document.title = "a";\n');
  await writeFile(join(root, 'apps/worker/src/w.ts'), 'document.title = "w";\n');
  await writeFile(
    join(root, 'vite.config.ts'),
    `export default { build: { rollupOptions: { input: {
      dashboard: ${JSON.stringify(join(root, 'index.html'))},
      worker: ${JSON.stringify(join(root, 'apps/worker/index.html'))} } } } };\n`,
  );
  return root;
}

describe('computeBuildHash', () => {
  let root = '';
  beforeEach(async () => {
    root = await fakeRepo();
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('changes with a source, an HTML entry or a new file, not with a test file', async () => {
    const h0 = await computeBuildHash(root);
    expect(h0).toMatch(/^[0-9a-f]{64}$/);
    expect(await computeBuildHash(root)).toBe(h0);
    await writeFile(join(root, 'packages/p/src/a.test.ts'), 'test');
    expect(await computeBuildHash(root)).toBe(h0);
    await writeFile(join(root, 'packages/p/src/a.ts'), 'document.title = "b";\n');
    const h1 = await computeBuildHash(root);
    expect(h1).not.toBe(h0);
    await writeFile(join(root, 'apps/worker/index.html'), '<p>changed</p>');
    const h2 = await computeBuildHash(root);
    expect(h2).not.toBe(h1);
    await writeFile(join(root, 'package-lock.json'), '{}');
    expect(await computeBuildHash(root)).not.toBe(h2);
  });

  it('builds when missing or stale, and skips when up to date', async () => {
    const lines: string[] = [];
    const log = (line: string): void => void lines.push(line);
    const first = await ensureBuilt({ root, log });
    expect(first.built).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/building/);
    expect((await readFile(join(root, 'dist', BUILD_HASH_FILE), 'utf8')).trim()).toBe(first.hash);
    expect(await readFile(join(root, 'dist/apps/worker/index.html'), 'utf8')).toMatch(/<script/);

    const second = await ensureBuilt({ root, log });
    expect(second).toMatchObject({ built: false, hash: first.hash });
    expect(lines).toHaveLength(1);

    await writeFile(join(root, 'packages/p/src/a.ts'), 'document.title = "c";\n');
    expect((await ensureBuilt({ root, log })).built).toBe(true);
  });

  it('reports a failing build as BuildError and writes no hash', async () => {
    await writeFile(join(root, 'packages/p/src/a.ts'), 'import "./missing.ts";\n');
    await expect(ensureBuilt({ root, log: () => undefined, logLevel: 'silent' })).rejects.toMatchObject({
      name: 'BuildError',
    });
    await expect(readFile(join(root, 'dist', BUILD_HASH_FILE), 'utf8')).rejects.toThrow();
  });

  it('is cancellable', async () => {
    const controller = new AbortController();
    const building = ensureBuilt({
      root,
      log: () => controller.abort(), // abort right when the build starts
      signal: controller.signal,
    });
    await expect(building).rejects.toMatchObject({ name: 'AbortError' });
    await expect(readFile(join(root, 'dist', BUILD_HASH_FILE), 'utf8')).rejects.toThrow();
  });
});
