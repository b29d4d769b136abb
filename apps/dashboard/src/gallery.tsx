import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { modelPreset, parseRunConfig, runShape } from '@peertrain/protocol';
import type { RunConfig } from '@peertrain/protocol';
import type { PipelineView, RunReport, RunView, StepPoint, TimelineSpan } from '@peertrain/coordinator';
import { TopBar } from '@peertrain/ui';
import { Timeline } from './components/Timeline.tsx';
import { Topology } from './components/Topology.tsx';
import { PeerTable } from './components/PeerTable.tsx';
import { ReportCard } from './components/ReportCard.tsx';
import { RunForm } from './components/RunForm.tsx';
import { RunCharts } from './components/RunCharts.tsx';
import { fixturePeers, fixtureSteps, syntheticGpipe } from './timeline.fixture.ts';
import '@peertrain/ui/theme.css';
import './dashboard.css';

// The dashboard's views on synthetic GPipe spans, to look at them without a session
// (/apps/dashboard/gallery.html, dev server or build; the benchmark's dashboard part measures it).
// ?stages=4&mb=8&steps=3 shape the run; &live=1 adds a step every 400 ms (follow mode);
// &chart=600 is how many steps the charts show (made-up telemetry: fixturePeers, fixtureSteps);
// &merge=0 draws one point per step however many there are (the benchmark's comparison).
// The 16-peer scene: ?stages=16&mb=16&steps=4.

const q = new URLSearchParams(location.search);
const num = (k: string, d: number): number => Number(q.get(k) ?? d) || d;
const STAGES = num('stages', 4);
const MB = num('mb', 8);
const STEPS = num('steps', 3);
const CHART_STEPS = num('chart', 600);
const MERGE = q.get('merge') !== '0';
const ROOM = 'demo';

function data(steps: number): { spans: TimelineSpan[]; pipeline: PipelineView } {
  const { spans, pipeline } = syntheticGpipe({ stages: STAGES, microBatches: MB, steps, t0: 200 });
  const peerId = (p: number) => `pt-${ROOM}-w-s${p}`;
  const rename = (id: string) => id.replace('pt-room-', `pt-${ROOM}-`);
  const bubbles = Array.from({ length: steps }, (_, step) => ({
    step,
    bubble: pipeline.bubbleTheory + 0.06 + 0.02 * Math.sin(step),
  }));
  return {
    spans: spans.map((s) => ({
      ...s,
      peerId: rename(s.peerId),
      ...(s.peer ? { peer: rename(s.peer) } : {}),
    })),
    pipeline: {
      ...pipeline,
      assignments: pipeline.assignments.map((a) => ({ ...a, peerId: peerId(a.stage) })),
      predictedStepMs: 140,
      bubbleMeasured: bubbles.length > 0 ? pipeline.bubbleTheory + 0.06 : null,
      bubbles,
    },
  };
}

function report(pipeline: PipelineView): RunReport {
  return {
    config: sceneConfig(),
    finalLoss: 0.2345,
    testAccuracy: 0.9412,
    wallMs: 61_000,
    stepMsMedian: 150,
    computeMsMedian: 120,
    commMsMedian: 20,
    samplesPerSec: 850,
    bytesSent: 48_000_000,
    workers: pipeline.assignments.map((a) => ({
      peerId: a.peerId,
      rank: a.stage,
      role: `stage ${a.stage} of replica 0`,
      backend: 'webgpu',
      gflops: 310,
      bytesSent: 3_000_000,
      framesRefused: 0,
    })),
    loss: [],
    evals: [],
    pipeline: {
      schedule: 'gpipe',
      stages: STAGES,
      replicas: 1,
      microBatches: MB,
      recompute: true,
      bubbleMeasured: pipeline.bubbleMeasured ?? 0,
      bubbleTheory: pipeline.bubbleTheory,
      predictedStepMs: 140,
      perStage: pipeline.assignments.map((a) => ({
        stage: a.stage,
        layers: [a.first, a.end - 1], // inclusive, as the coordinator reports them
        layerNames: ['dense', 'relu', 'dense'],
        parameterBytes: 400_000 / (a.stage + 1),
        peakActivationBytes: 120_000,
        peakActivationBytesNoRecompute: 900_000,
        peerId: a.peerId,
      })),
    },
    errors: [],
  };
}

let chartCache: ReturnType<typeof fixtureSteps> | null = null;
let liveSteps: StepPoint[] = [];

/** At least n fixture steps, generated once and grown by doubling (live mode adds one a tick). */
function chartFixture(n: number, ranks: number, globalBatch: number): ReturnType<typeof fixtureSteps> {
  if (!chartCache || chartCache.steps.length < n) chartCache = fixtureSteps(2 * n, ranks, globalBatch);
  return chartCache;
}

/**
 * The scene's config: GPipe over STAGES stages of deepMlp. Its 9 layers cannot really be cut more
 * ways, so a larger scene (the 16-peer one) is the 9-stage config relabelled: made up, as its
 * spans and telemetry are.
 */
function sceneConfig(): RunConfig {
  const layers = modelPreset('deepMlp').layers.length;
  const c = parseRunConfig({
    ...{ strategy: 'pipeline', model: 'deepMlp', schedule: 'gpipe' },
    workers: Math.min(STAGES, layers),
  });
  return { ...c, workers: STAGES };
}

function chartRun(pipeline: PipelineView, steps: number): RunView {
  const config = sceneConfig();
  // As the coordinator does: one steps array per run, appended to (not a regenerated run).
  const n = CHART_STEPS + steps;
  const all = chartFixture(n, pipeline.assignments.length, runShape(config).globalBatch);
  if (liveSteps.length > n) liveSteps = [];
  while (liveSteps.length < n) liveSteps.push(all.steps[liveSteps.length]!);
  const points = liveSteps;
  const evals = all.evals.filter((e) => e.step <= n);
  return {
    runId: 1,
    phase: 'running',
    config,
    step: points.length,
    totalSteps: points.length + 200,
    steps: points,
    evals,
    error: null,
    startedAt: 200,
    spans: [],
    pipeline,
  };
}

function Gallery() {
  const [steps, setSteps] = useState(STEPS);
  useEffect(() => {
    if (q.get('live') !== '1') return;
    const t = setInterval(() => setSteps((s) => s + 1), 400);
    return () => clearInterval(t);
  }, []);
  // The coordinator keeps the last few steps only.
  const all = data(steps);
  const keep = Math.max(0, steps - 8);
  const spans = all.spans.filter((s) => s.step >= keep);
  const peers = fixturePeers(all.pipeline, steps - 1);
  const run = chartRun(all.pipeline, steps);
  return (
    <div className="page dashboard">
      <TopBar title="PeerTrain gallery" room={ROOM} />
      <main className="layout">
        <aside className="side">
          <RunForm
            phase="idle"
            busy={false}
            peers={peers}
            room={ROOM}
            onPlan={() => Promise.reject(new Error('the gallery has no coordinator to plan with'))}
            onStart={() => {}}
            onPause={() => {}}
            onResume={() => {}}
            onStop={() => {}}
          />
          <Topology spans={spans} pipeline={all.pipeline} peers={peers} room={ROOM} />
        </aside>
        <div className="main">
          <RunCharts run={run} peers={peers} room={ROOM} {...(MERGE ? {} : { maxPoints: Infinity })} />
          <Timeline spans={spans} pipeline={all.pipeline} peers={peers} room={ROOM} originMs={200} />
          <PeerTable peers={peers} room={ROOM} />
          <ReportCard report={report(all.pipeline)} room={ROOM} />
        </div>
      </main>
    </div>
  );
}

const el = document.getElementById('root');
if (!el) throw new Error('#root is missing');
createRoot(el).render(
  <StrictMode>
    <Gallery />
  </StrictMode>,
);
