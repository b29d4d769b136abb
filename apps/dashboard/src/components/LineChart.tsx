import { useEffect, useRef, type ReactNode } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { tickLabels, xRangeOf } from './chartData.ts';

const HEIGHT = 220;

export interface ChartSeries {
  label: string;
  color: string;
  /** One value per x (null: a gap). */
  y: readonly (number | null)[];
}

/** The lowest and highest value behind each point of a single-series chart, drawn as a band. */
export interface ChartBand {
  lo: readonly (number | null)[];
  hi: readonly (number | null)[];
}

/**
 * Lines over a shared x (steps or seconds), drawn with uPlot. The plot is built once per look
 * (labels, colours, number of series) and fed with setData on every update, so thousands of
 * points stay cheap. One series: `y` + `color` (and optionally a `band` shaded behind it);
 * several (with a legend): `series`.
 */
export function LineChart(props: {
  title: ReactNode;
  /** x values, ascending. */
  x: readonly number[];
  y?: readonly (number | null)[];
  color?: string;
  /** With `y`: a shaded band from lo to hi behind the line (e.g. the range a merged point hides). */
  band?: ChartBand | undefined;
  series?: readonly ChartSeries[];
  yLabel: string;
  /** Axis label of x (default "step"). */
  xLabel?: string;
  /** Fixed y range (e.g. accuracy 0..1); auto when omitted. */
  yRange?: [number, number];
  /**
   * Auto range from 0 up (for amounts such as bytes): a nearly constant series otherwise gets a
   * range so narrow that its tick labels all read the same ("815 kB" four times).
   */
  fromZero?: boolean;
  /** Draw points (for sparse series such as evaluations). */
  points?: boolean;
  format?: (v: number) => string;
  /** Accessible name of the chart (default: the title when it is a string). */
  ariaLabel?: string;
  /** Controls shown beside the title. */
  tools?: ReactNode;
  /** Steps the points cover (data-steps), when a point can stand for several. */
  steps?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const { yLabel, yRange, points, format, fromZero } = props;
  const xLabel = props.xLabel ?? 'step';
  const series: readonly ChartSeries[] = props.series ?? [
    { label: yLabel, color: props.color ?? '#2563eb', y: props.y ?? [] },
  ];
  const multi = props.series !== undefined;
  const band = multi ? undefined : props.band;
  const yMin = yRange?.[0];
  const yMax = yRange?.[1];
  // What the plot is built from (data aside): a change rebuilds it, anything else is setData.
  const look = JSON.stringify([xLabel, multi, band !== undefined, series.map((s) => [s.label, s.color])]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fmt = format ?? ((v: number) => String(v));
    const [, multiNow, banded, looks] = JSON.parse(look) as [string, boolean, boolean, [string, string][]];
    // A band's edges come first (series 1 and 2), so the line is drawn over its fill.
    const edge = (label: string): uPlot.Series => ({
      label,
      stroke: `${looks[0]![1]}55`,
      width: 1,
      points: { show: false },
    });
    const edges = banded ? [edge('highest'), edge('lowest')] : [];
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: multiNow, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // From the data itself: uPlot pads a lone x to twice its value before a range function sees it.
        x: { time: false, range: (u) => xRangeOf(u.data[0]?.[0] ?? null, u.data[0]?.at(-1) ?? null) },
        y:
          yMin !== undefined && yMax !== undefined
            ? { range: [yMin, yMax] }
            : fromZero
              ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] }
              : { auto: true },
      },
      axes: [
        { label: xLabel, stroke: '#5b6472', grid: { stroke: '#e6e9ee' } },
        {
          label: yLabel,
          stroke: '#5b6472',
          grid: { stroke: '#e6e9ee' },
          size: 64, // room for "2.40 MB" beside the axis label
          // No data yet on a scale the data sets: nothing to read either (the 0-1 placeholder range
          // read "0 B", "1 B"); a fixed range (accuracy, utilization) keeps its labels.
          values: (u, splits) =>
            u.data[0]?.length || (yMin !== undefined && yMax !== undefined)
              ? tickLabels(splits.map(fmt))
              : splits.map(() => ''),
        },
      ],
      bands: banded ? [{ series: [1, 2], fill: `${looks[0]![1]}22` }] : [],
      series: [
        { label: xLabel },
        ...edges,
        ...looks.map(([label, color]) => ({
          label,
          stroke: color,
          width: multiNow ? 1.5 : 2,
          points: { show: points ?? false, size: 6, fill: color },
        })),
      ],
    };
    const u = new uPlot(opts, [[], ...edges.map(() => []), ...looks.map(() => [])], el);
    chart.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      chart.current = null;
    };
  }, [look, xLabel, yLabel, yMin, yMax, points, format, fromZero]);

  // After every render, but only when an array changed identity (or the plot was rebuilt).
  const fed = useRef<{ plot: uPlot | null; arrays: readonly unknown[] }>({ plot: null, arrays: [] });
  useEffect(() => {
    const u = chart.current;
    if (!u) return;
    const arrays = [props.x, ...(band ? [band.hi, band.lo] : []), ...series.map((s) => s.y)];
    const last = fed.current;
    if (
      last.plot === u &&
      last.arrays.length === arrays.length &&
      arrays.every((a, i) => a === last.arrays[i])
    )
      return;
    fed.current = { plot: u, arrays };
    u.setData(arrays.map((a) => Array.from(a)) as uPlot.AlignedData);
  });

  const name = props.ariaLabel ?? (typeof props.title === 'string' ? props.title : yLabel);
  return (
    <figure className="card chart" aria-label={name} data-points={props.x.length} data-steps={props.steps}>
      <figcaption>
        {props.title}
        {props.tools}
      </figcaption>
      <div ref={box} className="chart-box" />
      {props.x.length === 0 && <p className="chart-empty muted">No data yet</p>}
    </figure>
  );
}
