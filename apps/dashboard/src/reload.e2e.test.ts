import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runIsolatedScript } from '@peertrain/harness';
import type { RunReport } from '@peertrain/coordinator';
import { DASHBOARD_CHECKPOINT_EVERY } from './roomResume.ts';
import {
  RELOAD_FORM,
  RELOAD_ROOM,
  RELOAD_WORKERS,
  type ReloadCheckResult,
} from './dashboard-check/reload-check.ts';

// Reloading the dashboard tab mid-run resumes the room, end to end: `npm start`, the dashboard and
// 2 worker tabs in real Chromium over real WebRTC inside a private network namespace
// (dashboard-check/reload.ts does the browser work). A data-parallel run from the Run form trains
// to the end; the same run again is paused after a checkpoint and the dashboard tab reloaded. The
// reloaded page must resume it with the same workers at the same ranks and end on the
// uninterrupted run's parameters. The same again with the tab closed and the room's URL opened in a
// new tab of the same browser profile. Screenshots: .artifacts/screenshots/dashboard-reload-resumed.png
// and dashboard-close-resumed.png.

const floats = async (path: string): Promise<Float32Array> => {
  const bytes = new Uint8Array(await readFile(path));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

describe('dashboard: reloading or closing and reopening the tab mid-run', () => {
  it.each([
    ['reloaded', 'reload'],
    ['closed and opened again', 'close'],
  ] as const)(
    '%s: resumes the run from its checkpoint with the waiting workers, ending on the uninterrupted parameters',
    async (_, mode) => {
      const args = mode === 'close' ? ['--close'] : [];
      const { code, stderr, result } = await runIsolatedScript(
        'apps/dashboard/src/dashboard-check/reload.ts',
        args,
      );
      const r = result as ReloadCheckResult | { error: string };
      if ('error' in r) throw new Error(`reload check failed: ${r.error}\n${stderr.slice(-4000)}`);
      expect(code, stderr).toBe(0);
      expect(r.mode).toBe(mode);
      const steps = Number(RELOAD_FORM.steps);

      // The interrupted page left its marker: the run, the dashboard's checkpoint period, the ranks.
      expect(r.marker.room).toBe(RELOAD_ROOM);
      expect(r.marker.config.steps).toBe(steps);
      expect(r.marker.config.checkpointEvery).toBe(DASHBOARD_CHECKPOINT_EVERY);
      expect(r.marker.ranks).toHaveLength(RELOAD_WORKERS);
      // Paused after at least one checkpoint; the newest is the last multiple of 10 reached.
      expect(r.checkpointStep).toBeGreaterThanOrEqual(DASHBOARD_CHECKPOINT_EVERY);
      expect(r.checkpointStep).toBeLessThanOrEqual(r.pausedAt);
      expect(r.checkpointStep % DASHBOARD_CHECKPOINT_EVERY).toBe(0);
      expect(r.urls.after).toBe(r.urls.before);

      // The reloaded page resumed from that checkpoint and finished every step.
      expect(r.banner).toContain(`from its checkpoint after step ${r.checkpointStep} of ${steps}`);
      expect(r.finalPhase).toBe('done');
      expect(r.totalSteps).toBe(steps);
      expect(r.finalStep).toBe(steps);
      const whole = JSON.parse(await readFile(r.whole.report, 'utf8')) as RunReport;
      const resumed = JSON.parse(await readFile(r.resumed.report, 'utf8')) as RunReport;
      expect(whole.loss.map((l) => l.step)).toEqual([...Array(steps).keys()]);
      expect(resumed.loss.map((l) => l.step)).toEqual(
        Array.from({ length: steps - r.checkpointStep }, (_, i) => r.checkpointStep + i),
      );
      // The same workers, at the ranks they had.
      expect(resumed.workers.map((w) => w.peerId)).toEqual(r.marker.ranks);

      // ...and the same parameters as the run never interrupted (deterministic all-reduce), and accuracy.
      const [a, b] = [await floats(r.resumed.weights), await floats(r.whole.weights)];
      expect(a.length).toBe(b.length);
      let maxAbs = 0;
      for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
      expect(maxAbs).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(resumed.testAccuracy - whole.testAccuracy)).toBeLessThanOrEqual(1e-6);

      expect(r.dashboardErrors).toEqual([]);
      expect(r.workerErrors).toEqual([]);
      console.log(
        `${mode} check: workers while away ${r.workersWhileAway.join(', ')}; uninterrupted ` +
          `${r.ms.uninterrupted.toFixed(0)} ms, reload to done ${r.ms.resumed.toFixed(0)} ms, all ${r.ms.total.toFixed(0)} ms`,
      );
    },
    540_000,
  );
});
