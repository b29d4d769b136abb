// What dashboard-check/run.ts does and prints; shared with dashboard.e2e.test.ts (importing run.ts
// would run it).

/** The room `npm start` is told to use: the links it prints carry it. */
export const ROOM = 'dash-check';
/** Wide enough for the two-column layout; the screenshots are taken at this width. */
export const VIEWPORT = { width: 1400, height: 1000 } as const;
/** Worker tabs, one per pipeline stage. */
export const WORKERS = 4;

/**
 * What the test types into the Run form: a 4-stage 1F1B pipeline on synthetic data. The deep MLP
 * (9 layers): the CNN at the default lr 0.1 diverges on synthetic data (loss 6 -> 8 -> 2.30, chance;
 * the single-worker reference does the same), while the deep MLP learns it within 60 steps.
 */
export const FORM = {
  strategy: 'pipeline',
  workers: '4',
  model: 'deepMlp',
  dataset: 'synthetic',
  // Enough steps for the mid-run readings and screenshot (from step 20 on) to be mid-run: at 60
  // steps, with two other sessions beside it, the run had ended before the screenshot.
  steps: '90',
  schedule: '1f1b',
  microBatches: '4',
} as const;

/** Pixels of a canvas near the colours the test looks for. */
export interface CanvasPixels {
  /** Device pixels of the canvas (0 when it was not found). */
  width: number;
  height: number;
  /** Pixels that are not (near) transparent or white. */
  inked: number;
  /** Near the timeline's forward blue (#3b82f6) and backward amber (#f59e0b). */
  forward: number;
  backward: number;
  /** Near the loss line's blue (#2563eb). */
  line: number;
}

/** The plan editor after Auto-plan, and the drag of one stage boundary. */
export interface PlanCheck {
  /** Per stage of the proposal: its head ("S0 layers 0–2 w-…"), predicted ms and memory texts. */
  stages: { head: string; ms: string; mem: string }[];
  /** The predicted step line under the stages. */
  step: string;
  /** The partition field after Auto-plan (still 'auto': the proposal is drawn, not typed). */
  partitionBefore: string;
  /** aria-valuenow of every boundary handle before and after the drag. */
  handlesBefore: number[];
  handlesAfter: number[];
  /** Which handle (0-based) was dragged from which layer to which. */
  dragged: { handle: number; from: number; to: number };
  /** The partition field after the drag. */
  partitionAfter: string;
  /** Layers in the editor's strip. */
  layerCount: number;
  /** Predicted ms of each stage after the drag (re-evaluated in the page). */
  msAfter: string[];
}

/** The dashboard while the pipeline trains. */
export interface LiveView {
  /** Step of the progress bar when this was read. */
  step: number;
  /** Role column of the peer table, one entry per row. */
  roles: string[];
  /** Layers column of the peer table ("[0, 2)"), one entry per row. */
  layers: string[];
  /** Header of the peer table ("Peers (4 connected)"). */
  peersHeading: string;
  /** aria-label of the timeline canvas: "timeline of 4 peers, N spans". */
  timelineLabel: string;
  timeline: CanvasPixels;
  /** Per peer row, the compact cells by data-col (peer, state, device, memory, link, step, sent), line by line. */
  cells: Record<string, string[]>[];
  /** Each chart's aria-label and its data-points. */
  charts: Record<string, number>;
}

export interface DashboardCheckResult {
  dashboardUrl: string;
  workerUrl: string;
  /** The form's one-line summary of the run it will start (`describeShape`). */
  shape: string;
  /** Steps in the progress bar's aria-valuemax once the run started. */
  totalSteps: number;
  live: LiveView;
  /** Phase pill and step just before and just after the mid-run screenshot. */
  liveShot: { before: { phase: string; step: number }; after: { phase: string; step: number } };
  /** The loss chart's line, read twice while training (the second at a later step). */
  lossEarly: { step: number; pixels: CanvasPixels };
  lossLater: { step: number; pixels: CanvasPixels };
  /** Chart data-points at the early reading (step 8) and after the run ended. */
  chartsEarly: Record<string, number>;
  chartsDone: Record<string, number>;
  /** Phase pill after the run. */
  finalPhase: string;
  /** The report card's heading and its pipeline section's heading. */
  reportHeading: string;
  pipelineHeading: string;
  /** The report's first figures: label -> text ("test accuracy" -> "97.85%"). */
  reportStats: Record<string, string>;
  /** Rows of the report's per-stage table: [stage, layers, peer]. */
  reportStages: string[][];
  plan: PlanCheck;
  /**
   * The data-parallel shard editor of the form's defaults (3 workers, MNIST): sizes shown, and after
   * typing 1000 for worker 0 (the last worker takes the rest).
   */
  shards: { before: string[]; after: string[] };
  /** Where the downloads were saved, and the names the page suggested. */
  downloads: {
    report: { path: string; suggested: string };
    trace: { path: string; suggested: string };
    modelJson: { path: string; suggested: string };
    weights: { path: string; suggested: string };
  };
  screenshots: { shards: string; plan: string; live: string; done: string };
  /** Console errors and uncaught exceptions of the dashboard page. */
  dashboardErrors: string[];
  /** Uncaught exceptions of the worker tabs. */
  workerErrors: string[];
  ms: { serverUp: number; peersJoined: number; started: number; finished: number; total: number };
}
