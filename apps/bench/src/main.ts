// `npm run bench`: see apps/bench/README.md. Re-executes itself inside a private network namespace
// (WebRTC between tabs needs it on this machine: packages/harness/README.md), then runs every part and writes
// bench/results/<name>.{json,md}.
import { join, relative } from 'node:path';
import { ConfigError } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';
import {
  REPO_ROOT,
  applyLink,
  insideIsolatedNetwork,
  isolatedNetworkAvailable,
  onParentExit,
  reexecIsolated,
} from '@peertrain/harness';
import type { AppliedLink } from '@peertrain/harness';
import { HELP, parseArgs, settingsFor } from './args.ts';
import { renderMarkdown } from './report.ts';
import { writeResults } from './results.ts';
import { runBench } from './run.ts';

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bench: ${err.message}\n\n${HELP}`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!insideIsolatedNetwork()) {
    if (await isolatedNetworkAvailable()) return reexecIsolated();
    log('no private network namespace here (needs root, unshare, ip): running on the host network');
  }

  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new AbortError(`received ${sig}`));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const stopWatching = onParentExit(() => controller.abort(new AbortError('parent process exited')));
  // Before any browser starts (the delay adds a TUN device, which Chromium would take for a network change).
  let link: AppliedLink | null = null;
  try {
    link = args.link ? await applyLink(args.link, { signal: controller.signal }) : null;
    if (link) log(`link impaired: ${link.text} (the peers' UDP)`);
    const settings = settingsFor(args);
    const { report, attachments } = await runBench(settings, { log, signal: controller.signal });
    // An impaired run must not replace the unimpaired latest.*: by default it goes to its own folder.
    const linkDir = link ? [`link-${link.text.replace(/[^a-z0-9.]+/gi, '-').replace(/-$/, '')}`] : [];
    const outDir = args.outDir ?? join(REPO_ROOT, 'bench/results', ...linkDir);
    const paths = await writeResults(outDir, report, attachments);
    process.stdout.write(`${renderMarkdown(report)}\n`);
    log(`wrote ${relative(process.cwd(), paths.json)} and ${relative(process.cwd(), paths.md)}`);
    return report.errors.length > 0 ? 1 : 0;
  } catch (err) {
    log(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    return err instanceof AbortError ? 130 : 1;
  } finally {
    await link?.close();
    stopWatching();
    for (const s of signals) process.off(s, onSignal);
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; should a stray handle keep the loop alive, do not hang the shell.
setTimeout(() => process.exit(code), 3000).unref();
