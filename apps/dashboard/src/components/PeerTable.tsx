import type { PeerView } from '@peertrain/coordinator';
import { linkCountsText } from '@peertrain/protocol';
import { formatBytes, formatMs, formatShard, orDash } from '@peertrain/ui';
import { layersText, roleText, shortPeerId } from '../peerLabels.ts';
import {
  deviceText,
  deviceTitle,
  linkLines,
  linkTitle,
  memoryLines,
  memoryTitle,
  shardText,
} from './peerTelemetry.ts';

// One row per peer. Cells that combine two figures (device, memory, link) keep the table within
// 1400 px; their title tooltip has the detail. data-col names each cell for tests.

/** What each state means, as the pill's tooltip. */
export const STATE_TITLES: Record<PeerView['state'], string> = {
  joining: 'connected, measuring its device',
  idle: 'ready, not in a run',
  computing: 'its last step spent most of its time computing',
  sending: 'its last step spent most of its time sending data (sends, all-reduce)',
  waiting:
    "its last step spent most of its time waiting on a peer (receives: a pipeline stage waits for its neighbours' activations and gradients)",
  stalled: 'in a run, but no step reported for a while',
  gone: 'left or lost its connection',
};

export function PeerTable(props: { peers: readonly PeerView[]; room: string }) {
  // Layers only mean something in pipeline and hybrid runs.
  const staged = props.peers.some((p) => p.stage !== null);
  return (
    <section className="card peers">
      <h2>
        Peers{' '}
        <span className="muted">({props.peers.filter((p) => p.state !== 'gone').length} connected)</span>
      </h2>
      {props.peers.length === 0 ? (
        <p className="muted">No worker has joined yet. Share the link to add one.</p>
      ) : (
        <div className="table-scroll">
          <table>
            <thead>
              <tr>
                <th title="short id · rank in the run">peer</th>
                <th>state</th>
                <th title="backend · measured GFLOP/s">device</th>
                <th>role</th>
                <th title="training samples [first, end)">shard</th>
                {staged && <th>layers</th>}
                <th className="num" title="engine bytes · tensors held">
                  memory
                </th>
                <th className="num" title="round trip · bandwidth to the coordinator">
                  link
                </th>
                <th className="num" title="last step reported · its compute / communication time">
                  last step
                </th>
                <th
                  className="num"
                  title="bytes sent to other peers (frames refused, if any) · its links to them: tab (through this browser) or WebRTC"
                >
                  sent
                </th>
              </tr>
            </thead>
            <tbody>
              {props.peers.map((p) => (
                <tr key={p.peerId} className={p.state === 'gone' ? 'gone' : undefined}>
                  <td className="mono" data-col="peer" title={p.peerId}>
                    {shortPeerId(p.peerId, props.room)}
                    {/* A stage's role already says where it is. */}
                    {p.rank !== null && p.role !== 'stage' && <span className="peer-rank"> #{p.rank}</span>}
                    {p.joinedAtStep !== undefined && (
                      <span className="peer-joined" data-testid="peer-joined">
                        {' '}
                        joined at step {p.joinedAtStep}
                      </span>
                    )}
                  </td>
                  <td data-col="state">
                    <span className={`pill state-${p.state}`} title={STATE_TITLES[p.state]}>
                      {p.state}
                    </span>
                  </td>
                  <td data-col="device" title={deviceTitle(p.device)}>
                    {deviceText(p.device)}
                  </td>
                  <td className="wrap">{orDash(roleText(p))}</td>
                  <td title={formatShard(p.shard)}>{shardText(p.shard)}</td>
                  {staged && (
                    <td className="mono">
                      {/* an interleaved peer's chunks one per line, so the row keeps its width */}
                      {p.stage
                        ? (p.stage.chunks ?? [p.stage]).map((c) => (
                            <span className="cell-main" key={c.first}>
                              {layersText(c)}
                            </span>
                          ))
                        : orDash(null)}
                    </td>
                  )}
                  <td className="num" data-col="memory" title={memoryTitle(p.memory)}>
                    <TwoLines lines={memoryLines(p.memory)} />
                  </td>
                  <td className="num" data-col="link" title={linkTitle(p)}>
                    <TwoLines lines={linkLines(p)} />
                  </td>
                  <td className="num" data-col="step">
                    {p.lastStep === null ? (
                      orDash(null)
                    ) : (
                      <>
                        <span className="peer-step">{p.lastStep}</span> {stepTimes(p)}
                      </>
                    )}
                  </td>
                  <td className={`num${p.framesRefused > 0 ? ' warn' : ''}`} data-col="sent">
                    {formatBytes(p.bytesSent)}
                    {p.framesRefused > 0 && (
                      <span title={`${p.framesRefused} malformed frame(s) refused`}> ⚠{p.framesRefused}</span>
                    )}
                    {p.links && (
                      <span className="cell-sub" data-testid="peer-links">
                        {' '}
                        links: {linkCountsText(p.links)}
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** "55.0 / 6.00 ms": the last step's compute and communication time, the unit once. */
function stepTimes(p: Pick<PeerView, 'lastComputeMs' | 'lastCommMs'>): string {
  return `${formatMs(p.lastComputeMs).replace(/ ms$/, '')} / ${formatMs(p.lastCommMs)}`;
}

function TwoLines(props: { lines: [string, string] }) {
  return (
    <>
      <span className="cell-main">{props.lines[0]}</span> <span className="cell-sub">{props.lines[1]}</span>
    </>
  );
}
