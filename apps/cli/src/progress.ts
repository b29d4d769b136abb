import type { CoordinatorEvent } from '@peertrain/protocol';

/** Where progress goes: process.stderr, or a fake in tests. */
export interface ProgressSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  sink: ProgressSink;
  /** Print nothing but what must be seen (nothing here: errors and the summary print elsewhere). */
  quiet?: boolean;
  now?: () => number;
  /** Non-TTY: at most one progress line per this many ms (the last step always prints). */
  plainEveryMs?: number;
}

export interface Progress {
  event(event: CoordinatorEvent): void;
  /** A line that must not be mangled by the bar (clears and redraws it on a TTY). */
  line(text: string): void;
  /** Ends the bar (a TTY gets its final newline). */
  stop(): void;
}

/** "1:05", "12:00:07" for a duration in ms; "--:--" when unknown. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '--:--';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatBar(step: number, total: number, width: number): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, step / total)) : 0;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export interface ProgressState {
  step: number;
  totalSteps: number;
  loss: number;
  samplesPerSec: number;
  etaMs: number | null;
  /** Mean compute / step time over the workers so far, when the coordinator reports it. */
  computeUtilization?: number | undefined;
}

/**
 * "step 120/300 loss 0.4123 1234 samples/s compute 45% ETA 0:42" (the text part of the bar and the
 * plain line; the compute share only when known).
 */
export function formatStatus(p: ProgressState): string {
  const width = String(p.totalSteps).length;
  const u = p.computeUtilization;
  return (
    `step ${String(p.step).padStart(width)}/${p.totalSteps}` +
    ` loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}` +
    ` ${Math.round(p.samplesPerSec)} samples/s` +
    (u !== undefined && Number.isFinite(u) ? ` compute ${Math.round(u * 100)}%` : '') +
    ` ETA ${formatDuration(p.etaMs)}`
  );
}

/**
 * ETA from the average rate since the first progress event (steps before it, e.g. warm-up, do not
 * count). Null until two points exist.
 */
export class EtaEstimator {
  private first: { step: number; t: number } | null = null;
  update(step: number, totalSteps: number, t: number): number | null {
    if (!this.first) {
      this.first = { step, t };
      return null;
    }
    const steps = step - this.first.step;
    const dt = t - this.first.t;
    if (steps <= 0 || dt <= 0) return null;
    return ((totalSteps - step) * dt) / steps;
  }
}

/** Live progress on a TTY (one redrawn line) or throttled plain lines otherwise. */
export function createProgress(opts: ProgressOptions): Progress {
  const { sink, quiet = false, now = () => performance.now(), plainEveryMs = 2000 } = opts;
  const tty = sink.isTTY === true;
  const eta = new EtaEstimator();
  let barShown = false;
  let lastDraw = -Infinity;
  let last: ProgressState | null = null;

  const clearBar = (): void => {
    if (tty && barShown) sink.write('\r\x1b[2K');
    barShown = false;
  };
  const drawBar = (): void => {
    if (!last) return;
    const status = formatStatus(last);
    const columns = sink.columns !== undefined && sink.columns > 20 ? sink.columns : 80; // a pty may report 0
    // "[" + bar + "] " around the bar; the last column stays free so the terminal does not wrap.
    const room = columns - 1 - status.length - 3;
    const bar = room >= 10 ? `${formatBar(last.step, last.totalSteps, Math.min(30, room))} ` : '';
    const text = `${bar}${status}`;
    sink.write(`\r\x1b[2K${text.slice(0, Math.max(0, columns - 1))}`);
    barShown = true;
  };

  const line = (text: string): void => {
    if (quiet) return;
    const shown = barShown;
    clearBar();
    sink.write(`${text}\n`);
    if (shown) drawBar();
  };

  return {
    line,
    event(event) {
      if (quiet) return;
      switch (event.type) {
        case 'progress': {
          const t = now();
          last = {
            step: event.step,
            totalSteps: event.totalSteps,
            loss: event.loss,
            samplesPerSec: event.samplesPerSec,
            computeUtilization: event.computeUtilization,
            etaMs: eta.update(event.step, event.totalSteps, t),
          };
          const final = event.step >= event.totalSteps;
          if (tty) {
            if (final || t - lastDraw >= 100) {
              drawBar();
              lastDraw = t;
            }
          } else if (final || t - lastDraw >= plainEveryMs) {
            sink.write(`${formatStatus(last)}\n`);
            lastDraw = t;
          }
          return;
        }
        case 'eval':
          line(`eval at step ${event.step}: test accuracy ${(event.accuracy * 100).toFixed(2)}%`);
          return;
        case 'log':
          line(event.message);
          return;
        case 'done':
        case 'error':
        case 'trace':
        case 'model':
        case 'checkpoint':
          return; // the caller prints the summary or the error, and writes the trace
        default: {
          const _exhaustive: never = event;
          return _exhaustive;
        }
      }
    },
    stop() {
      if (tty && barShown) sink.write('\n');
      barShown = false;
    },
  };
}
