import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runIsolatedScript } from '@peertrain/harness';
import { parseChromeTrace } from '@peertrain/protocol';
import {
  activateBackend,
  buildModel,
  loadExportedModel,
  modelPreset,
  runSyntheticDataset,
} from '@peertrain/engine';
import { parseRunConfig } from '@peertrain/protocol';
import type { RunReport } from '@peertrain/coordinator';
import { FORM, ROOM, WORKERS, type DashboardCheckResult } from './dashboard-check/check.ts';

// The interactive dashboard, end to end: `npm start` serves it, 4 worker tabs join through its
// link, a person sets up a 4-stage 1F1B pipeline in the Run form and clicks Start, watches the
// peers, timeline and loss chart, then exports the trace and the trained model. Real Chromium,
// real WebRTC and PeerJS inside a private network namespace, no mocks (dashboard-check/run.ts
// does the browser work). Before Start it presses Auto-plan and drags a stage boundary with the
// mouse; the run must use the dragged partition. Screenshots: .artifacts/screenshots/
// dashboard-plan.png and dashboard-pipeline-{live,done}.png.
describe('dashboard: a pipeline run set up, watched and exported by hand', () => {
  it('trains 4 stages of 1F1B from the Run form and exports a trace and a loadable model', async () => {
    const {
      code,
      stderr: err,
      result,
    } = await runIsolatedScript('apps/dashboard/src/dashboard-check/run.ts');
    const r = result as DashboardCheckResult | { error: string };
    if ('error' in r) throw new Error(`dashboard check failed: ${r.error}\n${err.slice(-4000)}`);
    expect(code, err).toBe(0);

    // The dashboard's own worker link is the one npm start printed.
    expect(r.workerUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/apps/worker/\\?room=${ROOM}$`));
    expect(r.dashboardUrl).toBe(new URL(`/?room=${ROOM}`, r.workerUrl).href);
    // The form understood what was typed: 4 stages, 4 micro-batches, 60 steps.
    expect(r.shape).toMatch(/\b4\b/);
    expect(r.totalSteps).toBe(Number(FORM.steps));

    // Data parallel shard sizes: equal by default; typing one, the last worker takes the rest.
    expect(r.shards.before).toEqual(['2666', '2666', '2666']);
    expect(r.shards.after).toEqual(['1000', '2666', '4334']);

    // Auto-plan: the proposal per stage with predicted ms per micro-batch and memory vs the device.
    const plan = r.plan;
    const layerCount = modelPreset(FORM.model).layers.length;
    expect(plan.layerCount).toBe(layerCount);
    expect(plan.stages).toHaveLength(WORKERS);
    for (const st of plan.stages) {
      expect(st.ms).toMatch(/^\d+(\.\d+)? ms \/ µbatch$/);
      expect(st.mem).toMatch(/^\d+(\.\d+)? [kMG]?B of \d+(\.\d+)? [kMG]?B$/);
    }
    expect(plan.step).toMatch(/^predicted step \d[\d,.]* ms/);
    expect(plan.partitionBefore).toBe('auto');
    expect(plan.handlesBefore).toHaveLength(WORKERS - 1);
    // The drag moved exactly the one handle by one layer, and the field says so.
    const expectedHandles = plan.handlesBefore.map((b, k) =>
      k === plan.dragged.handle ? plan.dragged.to : b,
    );
    expect(plan.handlesAfter).toEqual(expectedHandles);
    const cuts = [0, ...expectedHandles, layerCount];
    const dragged = cuts.slice(0, -1).map((first, s) => [first, cuts[s + 1]! - 1] as [number, number]);
    expect(plan.partitionAfter).toBe(dragged.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(','));
    // Every stage is re-predicted for the dragged partition (it fits: nothing refused).
    for (const ms of plan.msAfter) expect(ms).toMatch(/^\d+(\.\d+)? ms \/ µbatch$/);
    // The run used the dragged partition.
    const report = JSON.parse(await readFile(r.downloads.report.path, 'utf8')) as RunReport;
    expect(report.config.partition).toBe(plan.partitionAfter);
    expect(report.pipeline?.perStage.map((s) => s.layers)).toEqual(dragged);
    // ...and its predicted step, from the same cost model the editor showed.
    expect(report.pipeline?.predictedStepMs).toBeGreaterThan(0);

    // While training: every peer has its stage, the timeline has a lane per peer, spans drawn.
    const live = r.live;
    expect(live.peersHeading).toContain(`(${WORKERS} connected)`);
    expect([...live.roles].sort()).toEqual(
      Array.from({ length: WORKERS }, (_, k) => `stage ${k} of replica 0`),
    );
    // Contiguous half-open layer ranges covering every layer of the model.
    const ranges = live.layers
      .map((t) => /^\[(\d+), (\d+)\)$/.exec(t))
      .map((m) => [Number(m?.[1]), Number(m?.[2])] as const)
      .sort((a, b) => a[0] - b[0]);
    expect(ranges).toHaveLength(WORKERS);
    expect(ranges[0]?.[0]).toBe(0);
    expect(ranges.at(-1)?.[1]).toBe(modelPreset(FORM.model).layers.length);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]?.[0]).toBe(ranges[i - 1]?.[1]);
    const spans = /^timeline of (\d+) peers, (\d+) spans$/.exec(live.timelineLabel);
    expect(spans?.[1], live.timelineLabel).toBe(String(WORKERS));
    expect(Number(spans?.[2])).toBeGreaterThan(WORKERS * 2 * Number(FORM.microBatches));
    expect(live.timeline.forward).toBeGreaterThan(200);
    expect(live.timeline.backward).toBeGreaterThan(200);

    // The peer table's live telemetry: each peer busy, its engine memory and its link measured.
    expect(live.cells).toHaveLength(WORKERS);
    for (const row of live.cells) {
      expect(['computing', 'sending', 'waiting', 'stalled']).toContain(row.state?.[0]);
      expect(row.memory?.[0]).toMatch(/^\d+(\.\d+)? [kMG]?B$/);
      // Its stage's parameters (arrays between steps) and the engine's tensors when it holds any;
      // tensors alone while its latest pong (one a second) predates the run's parameters.
      expect(row.memory?.[1]).toMatch(/^([\d.]+[kM]? params( \+ \d+ tensors?)?|\d+ tensors?)$/);
      expect(row.link?.[0]).toMatch(/^\d+(\.\d+)? ms$/);
      expect(row.link?.[1]).toMatch(/^\d+(\.\d+)? [kMG]?B\/s$/);
    }

    expect(live.cells.some((row) => row.memory?.[1]?.includes('params'))).toBe(true);

    // The charts grew while it trained: one point per step, accuracy at each evaluation.
    const grew = ['training loss', 'samples per second', 'utilization per peer', 'bytes per step'];
    for (const name of grew) {
      expect(r.chartsEarly[name], name).toBeGreaterThan(0);
      expect(live.charts[name], name).toBeGreaterThan(r.chartsEarly[name]!);
      expect(r.chartsDone[name], name).toBe(r.totalSteps);
    }
    expect(r.chartsDone['test accuracy']).toBeGreaterThanOrEqual(1);

    // The "live" screenshot shows a run in progress, paused at a step before its last.
    // Paused for them: no step passes while paused, and Resume finishes the run (finalPhase below).
    expect(r.liveShot.before.phase).toBe('paused');
    expect(r.liveShot.after).toEqual(r.liveShot.before);
    expect(r.liveShot.after.step).toBeLessThan(r.totalSteps);

    // The loss chart draws a line at both readings, taken steps apart (its growth in points is
    // checked above; its pixels need not grow, as the axes rescale).
    expect(r.lossLater.step).toBeGreaterThan(r.lossEarly.step);
    expect(r.lossEarly.pixels.line).toBeGreaterThan(0);
    expect(r.lossLater.pixels.line).toBeGreaterThan(0);

    // After: done, with the pipeline section in the report.
    expect(r.finalPhase).toBe('done');
    expect(r.reportHeading).toContain(
      `${WORKERS} workers, pipeline 1F1B, ${FORM.model}, ${FORM.steps} steps`,
    );
    expect(r.pipelineHeading).toBe(`Pipeline 1F1B, ${WORKERS} stages, ${FORM.microBatches} micro-batches`);
    expect(r.reportStages.map((row) => row[0])).toEqual(['0', '1', '2', '3']);
    // It learned: synthetic blobs are easy for the deep MLP (the reference reaches loss ~0.1).
    expect(Number(r.reportStats['test accuracy']?.replace('%', ''))).toBeGreaterThanOrEqual(80);

    // The trace download: Chrome trace JSON, forward and backward spans on each of 4 processes.
    expect(r.downloads.trace.suggested).toMatch(
      new RegExp(`^peertrain-${ROOM}-${FORM.model}-pipeline-1f1b-.*\\.trace\\.json$`),
    );
    const trace = parseChromeTrace(JSON.parse(await readFile(r.downloads.trace.path, 'utf8')));
    const complete = trace.traceEvents.filter((e) => e.ph === 'X');
    const pidsOf = (kind: string) =>
      new Set(complete.filter((e) => e.name.startsWith(kind)).map((e) => e.pid));
    expect(pidsOf('forward').size).toBe(WORKERS);
    expect(pidsOf('backward')).toEqual(pidsOf('forward'));
    const steps = Number(FORM.steps) * Number(FORM.microBatches);
    for (const pid of pidsOf('forward')) {
      const fwd = complete.filter((e) => e.pid === pid && e.name.startsWith('forward'));
      expect(fwd.length).toBeGreaterThanOrEqual(steps);
    }
    // Each process is named after its place: "rank 0: stage 0 (layers 0-2)", one per stage.
    const names = trace.traceEvents
      .filter((e) => e.ph === 'M' && e.name === 'process_name' && pidsOf('forward').has(e.pid))
      .map((e) => String(e.args?.name));
    const stages = names.map((n) => /^rank (\d+): stage (\d+) \(layers \d+-\d+\)$/.exec(n)?.[2]);
    expect(stages.sort(), names.join('; ')).toEqual(['0', '1', '2', '3']);

    // The model download: TensorFlow.js files our engine reads back into the same CNN, trained.
    expect([r.downloads.modelJson.suggested, r.downloads.weights.suggested]).toEqual([
      'model.json',
      'weights.bin',
    ]);
    const loaded = loadExportedModel(
      await readFile(r.downloads.modelJson.path, 'utf8'),
      await readFile(r.downloads.weights.path),
    );
    const model = buildModel(modelPreset(FORM.model));
    expect(loaded.model.paramCount).toBe(model.paramCount);
    expect(loaded.params).toHaveLength(model.paramCount);
    expect(loaded.params.every(Number.isFinite)).toBe(true);
    // Trained parameters, not the seed's initial ones.
    const init = model.initParams(parseRunConfig({}).seed);
    expect(loaded.params.some((v, i) => v !== init[i])).toBe(true);
    // ...and scores on the test split what the live run reported (its last evaluation).
    expect(report.config.dataset).toBe('synthetic');
    await activateBackend('wasm');
    const data = runSyntheticDataset();
    const scored = await loaded.model.evaluate(loaded.params, data.testX, data.testY);
    expect(Math.abs(scored.accuracy - report.testAccuracy)).toBeLessThanOrEqual(0.001);

    expect(r.dashboardErrors).toEqual([]);
    expect(r.workerErrors).toEqual([]);
    console.log(
      `dashboard check: server ${r.ms.serverUp.toFixed(0)} ms, peers ${r.ms.peersJoined.toFixed(0)} ms, ` +
        `started ${r.ms.started.toFixed(0)} ms, done ${r.ms.finished.toFixed(0)} ms, all ${r.ms.total.toFixed(0)} ms`,
    );
  }, 420_000);
});
