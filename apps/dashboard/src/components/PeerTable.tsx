import type { PeerView } from '@peertrain/coordinator';
import { formatBytes, formatGflops, formatMs, formatShard, orDash } from '../shared/format.ts';
import { layersText, roleText, shortPeerId } from '../peerLabels.ts';

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
                <th>peer</th>
                <th>state</th>
                <th>backend</th>
                <th className="num">GFLOP/s</th>
                <th className="num">rank</th>
                <th>role</th>
                <th>shard</th>
                {staged && <th>layers</th>}
                <th className="num">RTT</th>
                <th className="num">last step</th>
                <th className="num">compute / comm</th>
                <th className="num">sent</th>
                <th className="num">refused</th>
              </tr>
            </thead>
            <tbody>
              {props.peers.map((p) => (
                <tr key={p.peerId} className={p.state === 'gone' ? 'gone' : undefined}>
                  <td className="mono" title={p.peerId}>
                    {shortPeerId(p.peerId, props.room)}
                  </td>
                  <td>
                    <span className={`pill state-${p.state}`}>{p.state}</span>
                  </td>
                  <td>{orDash(p.device?.backend)}</td>
                  <td className="num">{formatGflops(p.device?.gflops)}</td>
                  <td className="num">{orDash(p.rank)}</td>
                  <td className="wrap">{orDash(roleText(p))}</td>
                  <td>{formatShard(p.shard)}</td>
                  {staged && <td className="mono">{p.stage ? layersText(p.stage) : orDash(null)}</td>}
                  <td className="num">{formatMs(p.rttMs)}</td>
                  <td className="num">{orDash(p.lastStep)}</td>
                  <td className="num wrap">
                    {formatMs(p.lastComputeMs)} / {formatMs(p.lastCommMs)}
                  </td>
                  <td className="num">{formatBytes(p.bytesSent)}</td>
                  <td className={`num${p.framesRefused > 0 ? ' warn' : ''}`}>{p.framesRefused}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
