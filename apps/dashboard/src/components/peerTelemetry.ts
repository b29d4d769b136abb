import type { PeerView } from '@peertrain/coordinator';

type PeerMemory = NonNullable<PeerView['memory']>;
import { formatBandwidth, formatBytes, formatCount, formatGflops, formatMs, orDash } from '@peertrain/ui';

// Compact cell text for the peer table (the detail goes in the cell's title tooltip). Pure.

/** "wasm · 17.2" (backend · GFLOP/s). */
export function deviceText(device: PeerView['device']): string {
  if (!device) return orDash(null);
  return `${device.backend} · ${formatGflops(device.gflops)}`;
}

/** Every line of what the device said about itself: probes, adapter, limits, cores, memory. */
export function deviceTitle(device: PeerView['device']): string {
  if (!device) return 'not introduced yet';
  // The probe times a forward and backward pass of the model after warm-up; its workload says which.
  const chosen = device.probes.find((p) => p.backend === device.backend && p.ok);
  const lines = [
    `backend ${device.backend}, ${formatGflops(device.gflops)} GFLOP/s` +
      (chosen?.workload ? ` (${chosen.workload})` : ''),
  ];
  const probes = device.probes.map(
    (p) =>
      `${p.backend} ${p.ok ? formatGflops(p.gflops) : `failed${p.error ? `: ${p.error}` : ''}`}` +
      (p.ok && p.stepMs !== undefined ? ` (${formatMs(p.stepMs)} per pass)` : ''),
  );
  if (probes.length > 0) lines.push(`probes: ${probes.join(', ')}`);
  if (device.adapter) {
    lines.push(
      `adapter: ${Object.entries(device.adapter)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')}`,
    );
  }
  if (device.limits) {
    lines.push(
      `limits: ${Object.entries(device.limits)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
  }
  const extra = [
    device.hardwareConcurrency !== undefined ? `${device.hardwareConcurrency} cores` : null,
    device.deviceMemoryGiB !== undefined ? `${device.deviceMemoryGiB} GiB` : null,
  ].filter((x) => x !== null);
  if (extra.length > 0) lines.push(extra.join(', '));
  if (device.userAgent) lines.push(device.userAgent);
  return lines.join('\n');
}

/** The run's parameters are float32: their count, short ("102k"), from their bytes. */
function paramCount(paramBytes: number): string {
  return formatCount(paramBytes / Float32Array.BYTES_PER_ELEMENT);
}

/**
 * Two short lines: the bytes the peer holds, then what they are ("12.3 MB" / "102k params").
 * Data-parallel workers and pipeline stages keep the run's parameters (float32) as plain arrays
 * between steps, so the engine alone would read "0 B, 0 tensors" on a peer holding a model: the
 * bytes count both, and the second line names the parameters, plus the engine's tensors when it
 * holds any between steps (a growing count there is a leak). Without a run: the engine's tensors.
 */
export function memoryLines(m: PeerMemory | null): [string, string] {
  if (!m) return [orDash(null), ''];
  const tensors = `${m.numTensors} tensor${m.numTensors === 1 ? '' : 's'}`;
  if (m.paramBytes === undefined) return [formatBytes(m.numBytes), tensors];
  const params = `${paramCount(m.paramBytes)} params`;
  return [formatBytes(m.numBytes + m.paramBytes), m.numTensors > 0 ? `${params} + ${tensors}` : params];
}

export function memoryTitle(m: PeerMemory | null): string {
  if (!m) return 'no memory report yet';
  const lines = [
    `engine holds ${formatBytes(m.numBytes)} in ${m.numTensors} tensors` +
      (m.numBytesInGPU !== undefined ? ` (${formatBytes(m.numBytesInGPU)} on the GPU)` : '') +
      (m.unreliable ? ' (approximate)' : ''),
  ];
  if (m.paramBytes !== undefined)
    lines.push(
      `parameters ${formatBytes(m.paramBytes)}: ${paramCount(m.paramBytes)} float32 (arrays, outside the engine)`,
    );
  if (m.savedActivations !== undefined)
    lines.push(
      `activations of ${m.savedActivations} micro-batch${m.savedActivations === 1 ? '' : 'es'} held for backward`,
    );
  if (m.peakActivationBytes !== undefined)
    lines.push(`activations at the last step's peak ${formatBytes(m.peakActivationBytes)}`);
  return lines.join('\n');
}

/** Two short lines: round trip over bandwidth to the coordinator ("0.62 ms" / "21.3 MB/s"). */
export function linkLines(p: Pick<PeerView, 'rttMs' | 'bandwidthBytesPerSec'>): [string, string] {
  return [formatMs(p.rttMs), formatBandwidth(p.bandwidthBytesPerSec)];
}

export function linkTitle(p: Pick<PeerView, 'rttMs' | 'bandwidthBytesPerSec' | 'clockOffsetMs'>): string {
  return [
    `round trip ${formatMs(p.rttMs)} (best of recent pings)`,
    `coordinator → peer ${formatBandwidth(p.bandwidthBytesPerSec)} (probe between runs)`,
    `clock offset ${p.clockOffsetMs === null ? orDash(null) : `${p.clockOffsetMs.toFixed(2)} ms`}`,
  ].join('\n');
}

/** A shard in thousands, half-open: "0–30k", "30k–60k" (the exact range is the title). */
export function shardText(shard: PeerView['shard']): string {
  if (!shard) return orDash(null);
  const k = (n: number): string =>
    n < 1000 ? String(n) : `${Number((n / 1000).toFixed(n % 1000 === 0 ? 0 : 1))}k`;
  return `${k(shard.start)}–${k(shard.start + shard.count)}`;
}
