import { describe, expect, it, vi } from 'vitest';
import { parseRunConfig, PeerLostError, PhaseTimeoutError } from '@peertrain/protocol';
import type { Coordinator, CoordinatorEvent, RunReport } from '@peertrain/coordinator';
import { coalesceProgress, pageEmitter, runHeadless } from './headless.ts';

const config = parseRunConfig({ workers: 2, steps: 3 });
const report = { config, finalLoss: 0.5, testAccuracy: 0.9 } as RunReport;

/** A coordinator whose run() emits `events` then settles with `outcome`. */
function fakeCoordinator(events: CoordinatorEvent[], outcome: RunReport | Error) {
  const listeners = new Set<(e: CoordinatorEvent) => void>();
  const run = vi.fn<Coordinator['run']>(() => {
    for (const e of events) for (const l of listeners) l(e);
    return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
  });
  const coordinator: Pick<Coordinator, 'run' | 'onEvent'> = {
    run,
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return { coordinator, run, listenerCount: () => listeners.size };
}

describe('runHeadless', () => {
  it('forwards events, then one done with the report', async () => {
    const progress: CoordinatorEvent = {
      type: 'progress',
      step: 1,
      totalSteps: 3,
      loss: 1,
      samplesPerSec: 10,
    };
    const { coordinator, run, listenerCount } = fakeCoordinator(
      [{ type: 'log', message: 'hi' }, progress, { type: 'done', report }],
      report,
    );
    const emitted: CoordinatorEvent[] = [];
    await expect(
      runHeadless(
        coordinator,
        { config, faults: ['malformed'] },
        { emit: (e) => emitted.push(e), waitMs: 5 },
      ),
    ).resolves.toBe(report);
    expect(emitted).toEqual([{ type: 'log', message: 'hi' }, progress, { type: 'done', report }]);
    expect(run).toHaveBeenCalledWith(config, { waitMs: 5, faults: ['malformed'] });
    expect(listenerCount()).toBe(0);
  });

  it('hands the trained parameters over only to a request that asked for them', async () => {
    const model: CoordinatorEvent = { type: 'model', model: 'mlp', paramsBase64: 'AACAPw==' };
    const events: CoordinatorEvent[] = [{ type: 'log', message: 'hi' }, model];
    const emittedBy = async (request: { config: typeof config; faults: string[]; model?: true }) => {
      const emitted: CoordinatorEvent[] = [];
      await runHeadless(fakeCoordinator(events, report).coordinator, request, {
        emit: (e) => emitted.push(e),
      });
      return emitted.map((e) => e.type);
    };
    expect(await emittedBy({ config, faults: [] })).toEqual(['log', 'done']);
    expect(await emittedBy({ config, faults: [], model: true })).toEqual(['log', 'model', 'done']);
  });

  it('emits the run error once, as the terminal event', async () => {
    const err = new PhaseTimeoutError('join', 120000);
    const { coordinator } = fakeCoordinator([{ type: 'log', message: 'waiting' }], err);
    const emitted: CoordinatorEvent[] = [];
    await expect(
      runHeadless(coordinator, { config, faults: [] }, { emit: (e) => emitted.push(e) }),
    ).rejects.toBe(err);
    expect(emitted.at(-1)).toEqual({
      type: 'error',
      error: { name: 'PhaseTimeoutError', message: err.message },
    });
    expect(emitted.filter((e) => e.type === 'error')).toHaveLength(1);
  });

  it('does not repeat an error the coordinator already emitted last', async () => {
    const err = new PeerLostError('pt-r-w-1');
    const { coordinator } = fakeCoordinator(
      [{ type: 'error', error: { name: err.name, message: err.message } }],
      err,
    );
    const emitted: CoordinatorEvent[] = [];
    await expect(
      runHeadless(coordinator, { config, faults: [] }, { emit: (e) => emitted.push(e) }),
    ).rejects.toBe(err);
    expect(emitted).toEqual([{ type: 'error', error: { name: 'PeerLostError', message: err.message } }]);
  });
});

describe('pageEmitter', () => {
  it('is a no-op without peertrainEmit', () => {
    expect(() => pageEmitter({})({ type: 'log', message: 'x' })).not.toThrow();
  });

  it('calls peertrainEmit without waiting and swallows its rejection or throw', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const seen: CoordinatorEvent[] = [];
    const rejecting = pageEmitter({
      peertrainEmit: (e) => {
        seen.push(e);
        return Promise.reject(new Error('page closed'));
      },
    });
    rejecting({ type: 'log', message: 'a' });
    expect(seen).toHaveLength(1);
    pageEmitter({
      peertrainEmit: () => {
        throw new Error('boom');
      },
    })({ type: 'log', message: 'b' });
    await new Promise((r) => setTimeout(r, 0));
    expect(warn).toHaveBeenCalledTimes(2);
    warn.mockRestore();
  });
});

describe('coalesceProgress', () => {
  const progress = (step: number, totalSteps = 100): CoordinatorEvent => ({
    type: 'progress',
    step,
    totalSteps,
    loss: 10 - step / 10,
    samplesPerSec: step,
  });

  function setup() {
    vi.useFakeTimers();
    let t = 0;
    const sent: CoordinatorEvent[] = [];
    const emit = coalesceProgress((e) => sent.push(e), { everyMs: 100, now: () => t });
    return { sent, emit, advance: (ms: number) => ((t += ms), vi.advanceTimersByTime(ms)) };
  }

  it('sends one progress event per interval, the newest, with every held step loss', () => {
    const { sent, emit, advance } = setup();
    emit(progress(1)); // the first goes at once
    for (let s = 2; s <= 11; s++) emit(progress(s));
    expect(sent).toEqual([progress(1)]);
    advance(100); // the timer sends what is held
    expect(sent).toHaveLength(2);
    const last = sent[1] as Extract<CoordinatorEvent, { type: 'progress' }>;
    expect(last.step).toBe(11);
    expect(last.losses?.map((l) => l.step)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(last.losses?.[0]?.loss).toBeCloseTo(9.8);
    advance(500);
    expect(sent).toHaveLength(2); // nothing held, nothing sent
    vi.useRealTimers();
  });

  it('flushes held progress before any other event and at the last step', () => {
    const { sent, emit } = setup();
    emit(progress(1));
    emit(progress(2));
    emit({ type: 'eval', step: 2, accuracy: 0.5 });
    expect(sent.map((e) => e.type)).toEqual(['progress', 'progress', 'eval']);
    expect(sent[1]).toEqual(progress(2)); // a single held step has no losses list
    emit(progress(3, 3));
    expect(sent).toHaveLength(4); // the last step goes at once
    vi.useRealTimers();
  });
});
