import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { coordinatorPeerId, toWireError, type RunConfig } from '@peertrain/protocol';
import { createCoordinator, type Coordinator, type CoordinatorView } from '@peertrain/coordinator';
import {
  type BootContext,
  BootPanel,
  type BootStage,
  CONFIG_STAGE,
  fetchPageConfig,
  LIVE_VIEW_EVERY_MS,
  openPeerSession,
  type PeerSession,
  signalUrl,
  TopBar,
  UNWATCHED_VIEW_EVERY_MS,
  useBoot,
  useFrameThrottled,
} from '@peertrain/ui';
import { defaultCheckpointStore } from './checkpointStore.ts';
import { claimId } from './claimId.ts';
import {
  markedRun,
  resumeInterrupted,
  runMarkers,
  withCheckpoints,
  type Resumed,
  type RunMarkers,
} from './roomResume.ts';
import { pageCheckpoint, runHeadless, HEADLESS_WAIT_MS, type Emit } from './headless.ts';
import { createRunController, type RunController } from './runController.ts';
import type { DashboardParams } from './params.ts';
import { ShareCard } from './components/ShareCard.tsx';
import { PeerTable } from './components/PeerTable.tsx';
import { RunForm } from './components/RunForm.tsx';
import { RunProgress } from './components/RunProgress.tsx';
import { RunCharts } from './components/RunCharts.tsx';
import { ReportCard } from './components/ReportCard.tsx';
import { Timeline } from './components/Timeline.tsx';
import { Topology } from './components/Topology.tsx';

/** What the dashboard holds while it is up; torn down in reverse order. */
interface Live {
  session: PeerSession;
  coordinator: Coordinator;
  runs: RunController;
  /** This room's run marker (roomResume.ts): what a reload resumes. */
  markers: RunMarkers;
  /** Set when this page resumed an interrupted run. */
  resumed: Resumed | null;
  /** The run this page was started with (headless) or resumed: the Run form shows it. */
  formConfig: RunConfig | undefined;
  offs: (() => void)[];
}

async function startDashboard(
  params: DashboardParams,
  emit: Emit,
  ctx: BootContext<BootStage>,
): Promise<Live> {
  const { signal, setStage } = ctx;
  // A headless request that cannot be decoded is the session's terminal event; the page still starts.
  if (params.request?.ok === false) emit({ type: 'error', error: params.request.error });
  setStage(CONFIG_STAGE);
  const config = await fetchPageConfig({ defaultHost: location.hostname, signal });
  const peerId = coordinatorPeerId(params.room);
  const url = signalUrl(config.signal);
  setStage({ kind: 'signal', url, peerId });
  // A reload registers the same id again; the old page's socket may hold it a little longer.
  const session = await claimId(peerId, (s) => openPeerSession({ peerId, config, signal: s }), {
    signal,
    onRetry: (n, err) => emit({ type: 'log', message: `try ${n}: ${err.message}; trying again` }),
  });
  emit({ type: 'log', message: `transport open: ${peerId} registered with ${url}` });
  try {
    setStage({ kind: 'start', what: 'the coordinator' });
    const offs = [
      session.mesh.onPeer((id, event) =>
        emit({ type: 'log', message: event === 'open' ? `peer joined: ${id}` : `peer left: ${id}` }),
      ),
      session.mesh.onError((from, err) =>
        emit({ type: 'log', message: `from ${from}: ${err.name}: ${err.message}` }),
      ),
    ];
    const coordinator = createCoordinator({ mesh: session.mesh, room: params.room });
    // Every checkpoint of the room's runs is kept in IndexedDB (checkpointStore.ts).
    const checkpoints = defaultCheckpointStore();
    offs.push(
      coordinator.onEvent((e) => {
        if (e.type !== 'checkpoint') return;
        checkpoints.save(params.room, e).catch((err: unknown) => {
          emit({ type: 'log', message: `checkpoint not stored: ${String(err)}` });
        });
      }),
    );
    const runs = createRunController();
    const markers = runMarkers(typeof localStorage === 'undefined' ? null : localStorage);
    const request = params.request;
    if (request?.ok) {
      runs.start((runSignal) =>
        runHeadless(coordinator, request.value, {
          emit,
          signal: runSignal,
          waitMs: HEADLESS_WAIT_MS,
          loadCheckpoint: () => pageCheckpoint(window),
        }),
      );
    }
    // Not headless (the harness drives those): a run this room's last page left unfinished goes on.
    const resumed = request
      ? null
      : resumeInterrupted({ coordinator, runs, markers, checkpoints, room: params.room, emit });
    const formConfig = request?.ok ? request.value.config : resumed?.config;
    return { session, coordinator, runs, markers, resumed, formConfig, offs };
  } catch (err) {
    await session.close();
    throw err;
  }
}

async function stopDashboard(live: Live): Promise<void> {
  live.runs.dispose();
  for (const off of live.offs) off();
  try {
    await live.coordinator.dispose();
  } finally {
    await live.session.close();
  }
}

export function App(props: { params: DashboardParams; origin: string; emit: Emit }) {
  const { params, emit } = props;
  const start = useCallback(
    async (ctx: BootContext<BootStage>) => {
      try {
        return await startDashboard(params, emit, ctx);
      } catch (err) {
        // The harness waits for a terminal event: a page that cannot start must say so.
        if (params.headless && !ctx.signal.aborted) {
          emit({ type: 'error', error: toWireError(err) });
        }
        throw err;
      }
    },
    [params, emit],
  );
  const { state, retry } = useBoot(start, stopDashboard, CONFIG_STAGE);

  return (
    <div className="page dashboard">
      <TopBar title="PeerTrain" room={params.room}>
        <span className={`pill conn-${state.status}`}>
          {state.status === 'ready'
            ? 'coordinator online'
            : state.status === 'failed'
              ? 'offline'
              : 'connecting'}
        </span>
        {params.headless && <span className="pill">headless</span>}
      </TopBar>
      {params.roomError && (
        <p className="banner error-text" role="alert">
          {params.roomError.message}; using the new room {params.room}.
        </p>
      )}
      {params.request?.ok === false && (
        <p className="banner error-text" role="alert">
          <strong>{params.request.error.name}</strong>: {params.request.error.message}
        </p>
      )}
      {state.status === 'ready' ? (
        <Dashboard live={state.value} room={params.room} origin={props.origin} headless={params.headless} />
      ) : (
        <main className="layout">
          <aside className="side">
            <ShareCard room={params.room} origin={props.origin} />
          </aside>
          <div className="main">
            <BootPanel
              stage={state.stage}
              error={state.status === 'failed' ? state.error : null}
              onRetry={retry}
            />
          </div>
        </main>
      )}
    </div>
  );
}

/** What the page resumed, as it learns it (the checkpoint is read after boot). */
function ResumedBanner(props: { resumed: Resumed }) {
  const text = useSyncExternalStore(props.resumed.subscribe, props.resumed.text);
  return (
    <p className="banner resumed" role="status" data-testid="resumed">
      {text}
    </p>
  );
}

/** What the dashboard draws without waiting for its next turn: a run's phase, a new run, peers coming or going. */
function viewChangedShape(next: CoordinatorView, shown: CoordinatorView): boolean {
  return (
    next.run.phase !== shown.run.phase ||
    next.run.runId !== shown.run.runId ||
    next.peers.length !== shown.peers.length
  );
}

function Dashboard(props: { live: Live; room: string; origin: string; headless: boolean }) {
  const { coordinator, runs, markers, resumed } = props.live;
  const source = useMemo(
    () => ({
      get: () => coordinator.view(),
      subscribe: (l: (v: ReturnType<Coordinator['view']>) => void) => coordinator.subscribe(l),
    }),
    [coordinator],
  );
  // Headless: the CLI drives the page and nobody watches it (UNWATCHED_VIEW_EVERY_MS).
  const view = useFrameThrottled(
    source,
    props.headless ? UNWATCHED_VIEW_EVERY_MS : LIVE_VIEW_EVERY_MS,
    viewChangedShape,
  );
  const outcome = useSyncExternalStore(runs.subscribe, runs.state);
  const { run, peers } = view;
  // Timeline and topology: once a run has spans, or is a pipeline (whose spans are on their way).
  const parallel = run.spans.length > 0 || run.pipeline !== null;

  return (
    <main className={props.headless ? 'layout unwatched' : 'layout'}>
      <aside className="side">
        <ShareCard room={props.room} origin={props.origin} />
        <RunForm
          phase={run.phase}
          busy={outcome.busy}
          peers={peers}
          room={props.room}
          initial={props.live.formConfig}
          onPlan={(config, signal) => coordinator.plan(config, { signal })}
          onStart={(config) =>
            runs.start((signal) =>
              markedRun(coordinator, withCheckpoints(config), {
                room: props.room,
                markers,
                signal,
                waitMs: HEADLESS_WAIT_MS,
              }),
            )
          }
          onPause={() => coordinator.pause()}
          onResume={() => coordinator.resume()}
          onStop={() => coordinator.stop('stopped from the dashboard')}
        />
        {parallel && <Topology spans={run.spans} pipeline={run.pipeline} peers={peers} room={props.room} />}
      </aside>
      <div className="main">
        {resumed && <ResumedBanner resumed={resumed} />}
        <RunProgress run={run} peers={peers} />
        {outcome.error && !outcome.busy && (
          <p className="banner error-text" role="alert">
            Run failed: <strong>{outcome.error.name}</strong>: {outcome.error.message}
          </p>
        )}
        <RunCharts run={run} peers={peers} room={props.room} />
        {parallel && (
          <Timeline
            spans={run.spans}
            pipeline={run.pipeline}
            peers={peers}
            room={props.room}
            originMs={run.startedAt}
          />
        )}
        <PeerTable peers={peers} room={props.room} />
        {outcome.report && (
          <ReportCard
            report={outcome.report}
            room={props.room}
            trace={() => coordinator.trace()}
            trained={() => coordinator.trainedModel()}
          />
        )}
      </div>
    </main>
  );
}
