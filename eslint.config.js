import { dirname, relative, resolve } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

const ROOT = import.meta.dirname;

/** The app a repo-relative path lies in ("apps/worker/src/x.ts" -> "worker"), or null outside apps/. */
function appOf(path) {
  const m = /^apps\/([^/]+)\//.exec(path.split('\\').join('/') + '/');
  return m ? m[1] : null;
}

// Apps are deployables, packages are libraries (tldraw's split): an app imports packages only, never
// another app's files, by relative path, root path ("/apps/x/...") or package name (@peertrain/app-*).
// What two apps share belongs in a package (the pages' shared code is packages/ui).
const noCrossAppImports = {
  meta: {
    type: 'problem',
    messages: {
      crossApp:
        "'{{source}}' reaches into apps/{{target}}: apps import packages only. Move what is shared into a package (packages/ui for what the pages share).",
      appPackage:
        "'{{source}}' imports an app: apps are deployables, not libraries. Move what is shared into a package.",
    },
    schema: [],
  },
  create(context) {
    const file = relative(ROOT, context.filename);
    const own = appOf(file);
    const check = (node) => {
      if (node?.type !== 'Literal' || typeof node.value !== 'string') return;
      const source = node.value;
      if (/^@peertrain\/app-/.test(source)) {
        context.report({ node, messageId: 'appPackage', data: { source } });
        return;
      }
      let target = null;
      if (source.startsWith('.')) target = appOf(relative(ROOT, resolve(dirname(context.filename), source)));
      else if (source.startsWith('/')) target = appOf(source.slice(1));
      if (target !== null && target !== own)
        context.report({ node, messageId: 'crossApp', data: { source, target } });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};

const PURE_PACKAGES = '{base,protocol,collective,compress,planner,telemetry,optim,coordinator,schedules}';
// Tests and the helpers only tests use: exempt from the size limits and the timer ban.
const TEST_FILES = [
  '**/*.test.ts',
  '**/*.e2e.test.ts',
  '**/*.fixture.ts',
  'packages/collective/src/testMesh.ts',
  'packages/engine/src/testing.ts',
  'packages/transport/src/compliance.ts',
];
const TIMER_MESSAGE =
  'Pure packages take their timers injected, so tests drive them and every timer has an owner: a `Timers` in the init (createCoordinator({ timers })), `sleep(ms, signal)` from @peertrain/base, or `AbortSignal.timeout(ms)` for a deadline.';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'public/**', '.artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['apps/**/*.{ts,tsx}', 'packages/**/*.{ts,tsx}'],
    plugins: { peertrain: { rules: { 'no-cross-app-imports': noCrossAppImports } } },
    rules: { 'peertrain/no-cross-app-imports': 'error' },
  },
  {
    // Pure packages never touch vendor libraries or the DOM directly (README.md, "How it is built").
    files: [`packages/${PURE_PACKAGES}/src/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['@tensorflow/*', 'peerjs', 'react', 'react-dom', 'playwright-core'] },
      ],
    },
  },
  {
    // ...nor raw timers (tldraw bans them in its core packages the same way).
    files: [`packages/${PURE_PACKAGES}/src/**/*.ts`],
    ignores: TEST_FILES,
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].map((name) => ({
          name,
          message: TIMER_MESSAGE,
        })),
      ],
    },
  },
  {
    // Small files and functions: a file past 600 lines or a function past 100 is doing several jobs.
    files: ['packages/**/src/**/*.{ts,tsx}'],
    ignores: TEST_FILES,
    rules: {
      'max-lines': ['error', { max: 600 }],
      'max-lines-per-function': ['error', { max: 100 }],
    },
  },
  {
    files: ['apps/dashboard/src/**/*.tsx', 'apps/worker/src/**/*.tsx', 'packages/ui/src/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: reactHooks.configs.recommended.rules,
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['**/*.mjs', '.ci/**/*.mjs'], languageOptions: { globals: globals.node } },
);
