import { availableParallelism } from 'node:os';
import { ConfigError, PhaseTimeoutError, checkResumable, toWireError } from '@peertrain/protocol';
import { AbortError } from '@peertrain/base';
import type { RunConfig } from '@peertrain/protocol';
import type { Browser } from 'playwright-core';
import type { ChromeTrace } from '@peertrain/protocol';
import {
  BrowserNotFoundError,
  BuildError,
  IsolatedNetworkError,
  SessionError,
  applyLink,
  assertBrowserExecutable,
  formatChaosSpec,
  insideIsolatedNetwork,
  isolatedNetworkAvailable,
  launchBrowser,
  hiddenTabLaunch,
  onParentExit,
  readCheckpointDir,
  reexecIsolated,
  runSession,
  webrtcWorks,
} from '@peertrain/harness';
import type { ChaosEventRecord } from '@peertrain/harness';
import { HELP, parseCommandLine } from './args.ts';
import type { RunnerOptions } from './args.ts';
import { createProgress } from './progress.ts';
import type { ProgressSink } from './progress.ts';
import { formatSummary, writeModel, writeReport, writeTrace } from './report.ts';
import type { CliReport, PartialRun } from './report.ts';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: ProgressSink;
}

/** The data channels of the in-page probe could not open and no namespace is available. */
export class WebrtcUnavailableError extends Error {
  override readonly name = 'WebrtcUnavailableError';
}

export interface Failure {
  code: number;
  message: string;
  hint?: string;
}

/** Maps an error to the exit status, a one-line message and a hint for the common cases. */
export function describeFailure(err: unknown, ctx: { isolated: boolean }): Failure {
  if (err instanceof ConfigError) {
    return { code: 2, message: err.message, hint: 'run `peertrain --help` for the options' };
  }
  if (err instanceof AbortError) return { code: 130, message: `interrupted: ${err.message}` };
  if (!(err instanceof Error)) return { code: 1, message: String(err) };
  const message = `${err.name}: ${err.message}`;
  if (err instanceof BrowserNotFoundError) {
    return {
      code: 1,
      message,
      hint: 'install Chromium with `apt-get install -y chromium`, or pass --chromium PATH',
    };
  }
  if (err instanceof IsolatedNetworkError) {
    return {
      code: 1,
      message,
      hint: 'the private network namespace needs root and the `unshare` and `ip` tools',
    };
  }
  if (err instanceof WebrtcUnavailableError) {
    return { code: 1, message, hint: 'run as root with --isolated-network (needs `unshare` and `ip`)' };
  }
  if (err instanceof BuildError)
    return { code: 1, message, hint: 'run `npm run build` to see the full output' };
  if (err instanceof PhaseTimeoutError && !ctx.isolated && err.phase.startsWith('startup')) {
    return {
      code: 1,
      message,
      hint: 'if the workers never connect, WebRTC may be blocked here: try --isolated-network',
    };
  }
  return { code: 1, message };
}

function printFailure(io: CliIo, f: Failure): void {
  io.stderr.write(`peertrain: ${f.message.split('\n')[0]}\n`);
  if (f.hint) io.stderr.write(`hint: ${f.hint}\n`);
}

/**
 * Runs the in-process part under SIGINT/SIGTERM/SIGHUP: the first signal aborts (teardown runs),
 * a second one exits at once. In a re-executed child, the parent's death aborts too.
 */
async function withInterrupts<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    controller.abort(new AbortError(`received ${sig}`));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const stopWatching = onParentExit(() => controller.abort(new AbortError('parent process exited')));
  try {
    return await fn(controller.signal);
  } finally {
    stopWatching();
    for (const s of signals) process.off(s, onSignal);
  }
}

/** `peertrain ...`: resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let command;
  try {
    command = parseCommandLine(argv);
  } catch (err) {
    const f = describeFailure(err, { isolated: false });
    printFailure(io, f);
    return f.code;
  }
  if (command.kind === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  const { config, runner } = command;
  const isolated = insideIsolatedNetwork();
  const note = (text: string): void => {
    if (!runner.quiet) io.stderr.write(`peertrain: ${text}\n`);
  };
  try {
    await assertBrowserExecutable(runner.chromium);
    if (!isolated && (runner.isolatedNetwork || runner.link !== undefined)) {
      if (!(await isolatedNetworkAvailable())) {
        throw new IsolatedNetworkError('cannot create a private network namespace here');
      }
      note('running inside a private network namespace (--isolated-network)');
      return await reexecIsolated();
    }
    const outcome = await withInterrupts((signal) => train(config, runner, isolated, io, signal));
    if (outcome === 'reexec') {
      note(
        'WebRTC data channels cannot connect on this machine; re-running inside a private network namespace',
      );
      return await reexecIsolated();
    }
    return 0;
  } catch (err) {
    const f = describeFailure(err, { isolated });
    printFailure(io, f);
    return f.code;
  }
}

/** Probe (outside a namespace), run the session, write the report and print the summary. */
async function train(
  config: RunConfig,
  runner: RunnerOptions,
  isolated: boolean,
  io: CliIo,
  signal: AbortSignal,
): Promise<'ok' | 'reexec'> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  // A bad checkpoint (missing, corrupt, another run's) fails here, before Chromium starts.
  const resume = runner.resume !== undefined ? await readCheckpointDir(runner.resume) : undefined;
  if (resume) checkResumable(resume, config);
  // Before Chromium starts: it would take the delay's new TUN device for a network change.
  const link = runner.link && isolated ? await applyLink(runner.link, { signal }) : null;
  // --chaos hide=N: the hidden tabs need a DevTools port and Chrome's background throttling.
  const hiding = await hiddenTabLaunch(runner.chaos?.hide ?? 0);
  let browser: Browser | null = await launchBrowser({
    executablePath: runner.chromium,
    gpu: runner.gpu,
    args: [...runner.chromiumFlags, ...(hiding?.args ?? [])],
    ...(hiding ? { backgroundThrottling: true } : {}),
    signal,
  }).catch(async (err: unknown) => {
    await link?.close();
    throw err;
  });
  try {
    if (!isolated && !(await webrtcWorks(browser, { signal }))) {
      if (await isolatedNetworkAvailable({ signal })) return 'reexec';
      throw new WebrtcUnavailableError('WebRTC data channels cannot connect on this machine');
    }
    const progress = createProgress({ sink: io.stderr, quiet: runner.quiet });
    let chromium = browser.version();
    let room = runner.room ?? '';
    let report;
    // What the session computed so far, kept for a partial report if it fails.
    const seen: PartialRun = { loss: [], evals: [] };
    let trace: ChromeTrace | null = null;
    let trained: { model: RunConfig['model']; paramsBase64: string } | null = null;
    const chaosDone: ChaosEventRecord[] = [];
    const harnessFields = (): CliReport['harness'] => ({
      wallMs: performance.now() - t0,
      chromium,
      isolated,
      room,
      node: process.version,
      cores: availableParallelism(),
      startedAt,
      faults: [...runner.faults],
      ...(link ? { link: link.text } : {}),
      ...(runner.oneProfile ? { oneProfile: true } : {}),
      ...(runner.compute ? { compute: runner.compute } : {}),
      ...(runner.chaos ? { chaos: { spec: formatChaosSpec(runner.chaos), actions: [...chaosDone] } } : {}),
    });
    try {
      report = await runSession({
        config,
        faults: runner.faults,
        ...(runner.chaos ? { chaos: runner.chaos, onChaos: (r) => chaosDone.push(r) } : {}),
        browser,
        ...(hiding ? { devtoolsPort: hiding.port } : {}),
        ...(runner.checkpointDir !== undefined ? { checkpointDir: runner.checkpointDir } : {}),
        ...(runner.screenshot !== undefined ? { screenshot: runner.screenshot } : {}),
        ...(runner.oneProfile ? { oneProfile: true } : {}),
        ...(runner.compute ? { compute: runner.compute } : {}),
        ...(resume ? { resume } : {}),
        ...(runner.exportModel !== undefined ? { trainedModel: true } : {}),
        idleTimeoutMs: runner.idleTimeoutMs,
        signal,
        log: (line) => progress.line(line),
        onEvent: (event) => {
          if (event.type === 'progress')
            for (const l of event.losses ?? [event]) seen.loss.push({ step: l.step - 1, loss: l.loss });
          if (event.type === 'eval') seen.evals.push({ step: event.step, accuracy: event.accuracy });
          if (event.type === 'trace') trace = event.trace;
          if (event.type === 'model') trained = { model: event.model, paramsBase64: event.paramsBase64 };
          progress.event(event);
        },
        onReady: (info) => {
          chromium = info.chromium;
          room = info.room;
          progress.line(`peertrain: room ${info.room}, ${config.workers} workers, chromium ${info.chromium}`);
        },
        ...(runner.room !== undefined ? { room: runner.room } : {}),
        ...(runner.dist !== undefined ? { dist: runner.dist } : {}),
        ...(runner.verbose
          ? { onConsole: (src, type, text) => progress.line(`[${src}] ${type}: ${text}`) }
          : {}),
      });
    } catch (err) {
      // Nothing already computed is lost: the steps and evaluations seen so far go to the report
      // file, marked failed, before the error propagates.
      if (runner.trace && trace) await writeTrace(runner.trace, trace).catch(() => null);
      if (seen.loss.length > 0) {
        const file = await writeReport(runner.report, {
          failed: true,
          error: toWireError(err),
          config,
          ...seen,
          harness: harnessFields(),
        }).catch(() => null);
        if (file) progress.line(`peertrain: partial report (${seen.loss.length} steps) written to ${file}`);
      }
      throw err;
    } finally {
      progress.stop();
    }
    const full: CliReport = { ...report, harness: harnessFields() };
    const file = await writeReport(runner.report, full);
    io.stdout.write(formatSummary(full, file));
    if (runner.trace) {
      if (!trace) throw new SessionError({ name: 'TraceMissing', message: 'the dashboard sent no trace' });
      io.stdout.write(`  trace           ${await writeTrace(runner.trace, trace)}\n`);
    }
    if (runner.exportModel) {
      const t = trained as { model: RunConfig['model']; paramsBase64: string } | null;
      if (!t)
        throw new SessionError({ name: 'ModelMissing', message: 'the dashboard sent no trained model' });
      io.stdout.write(`  model           ${await writeModel(runner.exportModel, t.model, t.paramsBase64)}\n`);
    }
    return 'ok';
  } finally {
    const b = browser;
    browser = null;
    await b.close().catch(() => undefined);
    await link?.close();
  }
}
