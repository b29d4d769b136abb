import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const HEIGHT = 220;

/** One series over training steps, drawn with uPlot; data updates without recreating the chart. */
export function LineChart(props: {
  title: string;
  /** Steps, ascending. */
  x: readonly number[];
  y: readonly number[];
  yLabel: string;
  color: string;
  /** Fixed y range (e.g. accuracy 0..1); auto when omitted. */
  yRange?: [number, number];
  /** Draw points (for sparse series such as evaluations). */
  points?: boolean;
  format?: (v: number) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const { title, yLabel, color, yRange, points, format } = props;
  const yMin = yRange?.[0];
  const yMax = yRange?.[1];

  // (Re)create the chart when its look changes; data arrives through the effect below.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fmt = format ?? ((v: number) => String(v));
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false },
        y: yMin !== undefined && yMax !== undefined ? { range: [yMin, yMax] } : { auto: true },
      },
      axes: [
        { label: 'step', stroke: '#5b6472', grid: { stroke: '#e6e9ee' } },
        {
          label: yLabel,
          stroke: '#5b6472',
          grid: { stroke: '#e6e9ee' },
          size: 56,
          values: (_u, splits) => splits.map(fmt),
        },
      ],
      series: [
        { label: 'step' },
        { label: yLabel, stroke: color, width: 2, points: { show: points ?? false, size: 6, fill: color } },
      ],
    };
    const u = new uPlot(opts, [[], []], el);
    chart.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      chart.current = null;
    };
  }, [yLabel, color, yMin, yMax, points, format]);

  useEffect(() => {
    chart.current?.setData([Array.from(props.x), Array.from(props.y)]);
  }, [props.x, props.y, yLabel, color, yMin, yMax, points, format]);

  return (
    <figure className="card chart">
      <figcaption>{title}</figcaption>
      <div ref={box} className="chart-box" />
      {props.x.length === 0 && <p className="chart-empty muted">No data yet</p>}
    </figure>
  );
}
