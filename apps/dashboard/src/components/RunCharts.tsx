import { useMemo, useState, type ReactNode } from 'react';
import type { PeerView, RunView } from '@peertrain/coordinator';
import { formatBytes, formatCount, formatPercent } from '@peertrain/ui';
import { shortPeerId } from '../peerLabels.ts';
import { LineChart, type ChartSeries } from './LineChart.tsx';
import { ChartAccumulator, type ChartAxis } from './chartData.ts';

/** Sixteen distinguishable line colours (one per peer); beyond that they repeat. */
export const PEER_COLORS = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#1e3a8a',
  '#9f1239',
  '#166534',
  '#92400e',
  '#5b21b6',
  '#155e75',
  '#9d174d',
  '#3f6212',
];

const percent = (v: number): string => formatPercent(v, 0);
const bytes = (v: number): string => formatBytes(v);
const rate = (v: number): string => formatCount(v); // the axis's 0 read "0.00"

/**
 * The run's charts in a grid: loss and accuracy (over steps or over time: one toggle for all),
 * samples/s, per-peer utilization and bytes moved per step. Each figure has an aria-label,
 * data-points (its number of x values) and data-steps (the steps they cover) for tests. Past
 * MAX_CHART_POINTS steps a point is the mean of several steps (chartData.ts), and the titles say so;
 * the loss then shades the lowest to highest step behind each point, so a one-step spike still shows.
 */
export function RunCharts(props: {
  run: RunView;
  peers: readonly PeerView[];
  room: string;
  /** Most points per line (default MAX_CHART_POINTS; Infinity: one a step, for comparisons). */
  maxPoints?: number;
}) {
  const { peers, room } = props;
  const { steps, evals, config } = props.run;
  const [axis, setAxis] = useState<ChartAxis>('step');
  // The coordinator appends to one steps array per run (its length tells a new step) and replaces
  // evals when one is added: pongs do not recompute columns, and a new step costs the accumulator
  // that step (plus at most MAX_CHART_POINTS per column). (update() is idempotent for the same
  // arrays, so a render run twice does no harm.)
  const [chartAcc] = useState(() => new ChartAccumulator(props.maxPoints));
  const stepCount = steps.length;
  const c = useMemo(
    () => chartAcc.update({ steps, evals, config }),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- stepCount: the array grows in place
    [chartAcc, steps, stepCount, evals, config],
  );
  const merged = c.stepsPerPoint > 1;
  const title = (text: string, note?: string): ReactNode =>
    merged ? (
      <span>
        {text} <span className="muted chart-note">· {c.stepsPerPoint} steps per point</span>
        {note !== undefined && (
          <>
            {' '}
            <span className="muted chart-note">· {note}</span>
          </>
        )}
      </span>
    ) : (
      text
    );
  // Merged loss points are means: the band shows the lowest and highest step behind each.
  const lossBand = useMemo(() => (merged ? { lo: c.lossMin, hi: c.lossMax } : undefined), [c, merged]);
  const x = axis === 'step' ? c.step : c.timeS;
  const evalX = axis === 'step' ? c.evalStep : c.evalTimeS;
  const xLabel = axis === 'step' ? 'step' : 'time (s)';

  const sps = useMemo<ChartSeries[]>(
    () => [
      { label: 'last 5 steps', color: '#0891b2', y: c.samplesPerSec },
      { label: 'since start', color: '#94a3b8', y: c.samplesPerSecMean },
    ],
    [c],
  );
  // One line per rank, named after the peer that holds it now.
  const names = peers.map((p) => [p.rank, shortPeerId(p.peerId, room)] as const);
  const nameKey = JSON.stringify(names);
  const util = useMemo<ChartSeries[]>(() => {
    const byRank = new Map(JSON.parse(nameKey) as [number | null, string][]);
    return c.utilization.map((y, rank) => ({
      label: byRank.get(rank) ?? `rank ${rank}`,
      color: PEER_COLORS[rank % PEER_COLORS.length]!,
      y,
    }));
  }, [c, nameKey]);

  const tools = (
    <span className="chart-axis" role="group" aria-label="chart x axis">
      {(['step', 'time'] as const).map((a) => (
        <button
          key={a}
          type="button"
          className="chart-axis-button"
          aria-pressed={axis === a}
          onClick={() => setAxis(a)}
        >
          {a === 'step' ? 'steps' : 'time'}
        </button>
      ))}
    </span>
  );

  return (
    <div className="charts run-charts">
      <LineChart
        title={title('Training loss', 'shaded: lowest to highest')}
        steps={c.steps}
        ariaLabel="training loss"
        x={x}
        y={c.loss}
        band={lossBand}
        xLabel={xLabel}
        yLabel="loss"
        color="#2563eb"
        tools={tools}
      />
      <LineChart
        title="Test accuracy"
        ariaLabel="test accuracy"
        x={evalX}
        y={c.accuracy}
        xLabel={xLabel}
        yLabel="accuracy"
        color="#16a34a"
        yRange={[0, 1]}
        points
        format={percent}
      />
      <LineChart
        title={title('Samples/s')}
        steps={c.steps}
        ariaLabel="samples per second"
        x={c.step}
        series={sps}
        yLabel="samples/s"
        format={rate}
      />
      <LineChart
        title={title('Utilization per peer')}
        steps={c.steps}
        ariaLabel="utilization per peer"
        x={c.step}
        series={util}
        yLabel="computing"
        yRange={[0, 1]}
        format={percent}
      />
      <LineChart
        title={title('Bytes moved per step')}
        steps={c.steps}
        ariaLabel="bytes per step"
        x={c.step}
        y={c.bytes}
        yLabel="bytes"
        color="#7c3aed"
        format={bytes}
        fromZero
      />
    </div>
  );
}
