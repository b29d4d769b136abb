import { useId, useMemo } from 'react';
import type { PeerView, PipelineView, TimelineSpan } from '@peertrain/coordinator';
import { formatBytes } from '@peertrain/ui';
import { shortPeerId, stageBadge } from '../peerLabels.ts';
import { SPAN_STYLE } from '../timeline.ts';
import { edgeGeometry, edgeWidth, layoutNodes, linkRates, type Link } from '../topology.ts';

const W = 360;
const NODE_R = 17;
/**
 * Rate labels sit inside the lens between an edge and its reverse (negative gap: towards the
 * chord), clear of the peer names under the nodes; outside, a backward label lands on the names.
 */
const LABEL_GAP = -12;
/** Above this many peers the per-arrow labels overlap: rates move to tooltips and a summary line. */
const MAX_LABELLED_PEERS = 8;

/** Activations go to a later stage, gradients to an earlier one; other traffic is plain "send". */
function direction(link: Link, stageOf: ReadonlyMap<string, number>): 'forward' | 'backward' | 'send' {
  const a = stageOf.get(link.from);
  const b = stageOf.get(link.to);
  if (a === undefined || b === undefined || a === b) return 'send';
  return b > a ? 'forward' : 'backward';
}

/**
 * Who sends to whom: peers as nodes (a pipeline as a stage x replica grid, otherwise a ring), one
 * arrow per direction, as thick as its rate over the timeline's window.
 */
export function Topology(props: {
  spans: readonly TimelineSpan[];
  pipeline: PipelineView | null;
  peers: readonly PeerView[];
  room: string;
}) {
  const { spans, pipeline, peers, room } = props;
  const markerId = useId();
  const links = useMemo(() => linkRates(spans), [spans]);
  const ids = useMemo(() => {
    const set = new Set<string>();
    for (const a of pipeline?.assignments ?? []) set.add(a.peerId);
    for (const p of peers) if (p.rank !== null && p.state !== 'gone') set.add(p.peerId);
    for (const l of links) set.add(l.from).add(l.to);
    const ranks = new Map(peers.map((p) => [p.peerId, p.rank ?? Infinity]));
    return [...set].sort(
      (a, b) => (ranks.get(a) ?? Infinity) - (ranks.get(b) ?? Infinity) || a.localeCompare(b),
    );
  }, [pipeline, peers, links]);
  const { nodes, height } = useMemo(() => layoutNodes(ids, pipeline, W, 46), [ids, pipeline]);
  const at = new Map(nodes.map((n) => [n.peerId, n]));
  const stageOf = new Map(pipeline?.assignments.map((a) => [a.peerId, a.stage]) ?? []);
  const placeOf = new Map(pipeline?.assignments.map((a) => [a.peerId, a]) ?? []);
  const rankOf = new Map(peers.map((p) => [p.peerId, p.rank]));
  const maxRate = links.reduce((m, l) => Math.max(m, l.bytesPerSec), 0);
  const labelled = ids.length <= MAX_LABELLED_PEERS;
  const fastest = links.reduce<Link | null>((m, l) => (m && m.bytesPerSec >= l.bytesPerSec ? m : l), null);
  const totalRate = links.reduce((t, l) => t + l.bytesPerSec, 0);

  return (
    <section className="card topology">
      <h2>
        Topology <span className="muted">send rates over the timeline</span>
      </h2>
      {ids.length === 0 ? (
        <p className="muted">No peers in a run yet.</p>
      ) : (
        <svg
          viewBox={`0 0 ${W} ${height}`}
          role="img"
          aria-label={`${ids.length} peers, ${links.length} links`}
        >
          <defs>
            {(['forward', 'backward', 'send'] as const).map((k) => (
              <marker
                key={k}
                id={`${markerId}-${k}`}
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerUnits="userSpaceOnUse"
                markerWidth="9"
                markerHeight="9"
                orient="auto-start-reverse"
              >
                <path d="M0,0 L10,5 L0,10 z" fill={SPAN_STYLE[k].fill} />
              </marker>
            ))}
          </defs>
          {links.map((l) => {
            const a = at.get(l.from);
            const b = at.get(l.to);
            const g = a && b ? edgeGeometry(a, b, NODE_R + 2, 16, LABEL_GAP) : null;
            if (!g) return null;
            const kind = direction(l, stageOf);
            return (
              <g key={`${l.from}>${l.to}`} className="edge">
                <title>
                  {`${shortPeerId(l.from, room)} → ${shortPeerId(l.to, room)}: ${formatBytes(l.bytesPerSec)}/s, ${formatBytes(l.bytes)} in ${l.sends} sends`}
                </title>
                <path
                  d={g.d}
                  fill="none"
                  stroke={SPAN_STYLE[kind].fill}
                  strokeOpacity={0.85}
                  strokeWidth={edgeWidth(l.bytesPerSec, maxRate)}
                  markerEnd={`url(#${markerId}-${kind})`}
                />
                {labelled && (
                  <text
                    x={g.labelX}
                    y={g.labelY}
                    className="edge-label"
                    textAnchor="middle"
                    dominantBaseline="middle"
                  >
                    {formatBytes(l.bytesPerSec)}/s
                  </text>
                )}
              </g>
            );
          })}
          {nodes.map((n) => {
            const place = placeOf.get(n.peerId);
            const rank = rankOf.get(n.peerId);
            const badge = place
              ? stageBadge(place, pipeline?.replicas ?? 1)
              : rank !== null && rank !== undefined
                ? `#${rank}`
                : '·';
            return (
              <g key={n.peerId} className="node" transform={`translate(${n.x.toFixed(1)},${n.y.toFixed(1)})`}>
                <title>{n.peerId}</title>
                <circle r={NODE_R} />
                <text
                  className="node-badge"
                  textAnchor="middle"
                  dominantBaseline="central"
                  fontSize={badge.length > 3 ? 8 : 10}
                >
                  {badge}
                </text>
                <text className="node-name" y={NODE_R + 13} textAnchor="middle">
                  {shortPeerId(n.peerId, room)}
                </text>
              </g>
            );
          })}
        </svg>
      )}
      {!labelled && fastest && (
        <p className="muted small topology-summary">
          {links.length} links, {formatBytes(totalRate)}/s in all · fastest {shortPeerId(fastest.from, room)}{' '}
          → {shortPeerId(fastest.to, room)} {formatBytes(fastest.bytesPerSec)}
          /s · hover an arrow for its rate
        </p>
      )}
      {ids.length > 0 && links.length === 0 && (
        <p className="muted small">
          {spans.length === 0
            ? 'No transfers yet.'
            : 'No send in the timeline names its receiver (all-reduce and parameter-server traffic is not drawn as links).'}
        </p>
      )}
    </section>
  );
}
