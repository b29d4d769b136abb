import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { abortable } from '@peertrain/base';
import { BuildError } from './errors.ts';

/** The repository root (this file is packages/harness/src/build.ts). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** Written into the output directory after a successful build; compared to decide staleness. */
export const BUILD_HASH_FILE = '.build-hash';

/** Everything that can change the bundle: sources, both HTML entries, Vite config, lock file, public/. */
const SOURCE_DIRS = ['apps/*/src', 'packages/*/src', 'public'];
// Every page's HTML entry (the build inputs in vite.config.ts) plus what configures the build.
const SOURCE_FILES = [
  'index.html',
  'apps/worker/index.html',
  'apps/bench/index.html',
  'vite.config.ts',
  'package-lock.json',
];

async function listFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && !/\.test\.tsx?$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

async function expand(root: string, pattern: string): Promise<string[]> {
  const [first, star, ...rest] = pattern.split('/');
  if (star !== '*' || first === undefined) return listFiles(join(root, pattern));
  let subdirs;
  try {
    subdirs = await readdir(join(root, first), { withFileTypes: true });
  } catch {
    return [];
  }
  const lists = await Promise.all(
    subdirs.filter((d) => d.isDirectory()).map((d) => listFiles(join(root, first, d.name, ...rest))),
  );
  return lists.flat();
}

/**
 * SHA-256 over the relative path and content of every build input under `root` (test files
 * excluded: they are not bundled). Stable across machines: paths use '/' and are sorted.
 */
export async function computeBuildHash(root: string = REPO_ROOT): Promise<string> {
  const files = (await Promise.all(SOURCE_DIRS.map((p) => expand(root, p))))
    .flat()
    .concat(SOURCE_FILES.map((f) => join(root, f)));
  const rel = [...new Set(files.map((f) => relative(root, f).split(sep).join('/')))].sort();
  const hash = createHash('sha256');
  for (const file of rel) {
    let content: Buffer;
    try {
      content = await readFile(join(root, file));
    } catch {
      continue; // an optional entry that does not exist
    }
    hash.update(file).update('\0').update(String(content.length)).update('\0').update(content);
  }
  return hash.digest('hex');
}

export interface EnsureBuiltOptions {
  root?: string;
  /** Output directory, relative to root unless absolute. */
  outDir?: string;
  /** Where the one-line "building" message goes (stderr by default). */
  log?: (line: string) => void;
  /** Vite's own output (warnings and the error details by default). */
  logLevel?: 'info' | 'warn' | 'error' | 'silent';
  signal?: AbortSignal;
}

export interface BuildResult {
  outDir: string;
  hash: string;
  /** False when the existing build was up to date. */
  built: boolean;
  ms: number;
}

/** Runs `vite build` (vite.config.ts at the root) unless outDir already holds a build of the same sources. */
export async function ensureBuilt(opts: EnsureBuiltOptions = {}): Promise<BuildResult> {
  const { root = REPO_ROOT, signal, log = (line: string) => process.stderr.write(`${line}\n`) } = opts;
  const outDir = resolve(root, opts.outDir ?? 'dist');
  const t0 = performance.now();
  signal?.throwIfAborted();
  const hash = await computeBuildHash(root);
  const previous = await readFile(join(outDir, BUILD_HASH_FILE), 'utf8').catch(() => null);
  if (previous?.trim() === hash) return { outDir, hash, built: false, ms: performance.now() - t0 };
  signal?.throwIfAborted();
  log(`peertrain: building the web app into ${relative(process.cwd(), outDir) || '.'} (vite build)...`);
  const worker = new Worker(new URL('./build.worker.mjs', import.meta.url), {
    workerData: { root, configFile: join(root, 'vite.config.ts'), outDir, logLevel: opts.logLevel ?? 'warn' },
    execArgv: [],
  });
  const done = new Promise<void>((resolvePromise, reject) => {
    worker.once('message', (msg: unknown) => {
      if (typeof msg === 'object' && msg !== null && 'ok' in msg && msg.ok === true) resolvePromise();
      else {
        const message =
          typeof msg === 'object' && msg !== null && 'message' in msg ? String(msg.message) : 'unknown';
        reject(new BuildError(`vite build failed: ${message}`));
      }
    });
    worker.once('error', (err) => reject(new BuildError(`vite build failed: ${err.message}`)));
    worker.once('exit', (code) => reject(new BuildError(`vite build exited early (code ${code})`)));
  });
  // After an abort, terminate() makes `done` reject too; that rejection is expected and moot.
  done.catch(() => undefined);
  try {
    await abortable(done, signal);
  } finally {
    await worker.terminate();
  }
  await writeFile(join(outDir, BUILD_HASH_FILE), `${hash}\n`);
  return { outDir, hash, built: true, ms: performance.now() - t0 };
}
