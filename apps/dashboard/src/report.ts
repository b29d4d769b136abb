import type { RunReport, TrainedModel } from '@peertrain/coordinator';
import type { ChromeTrace } from '@peertrain/protocol';
import { strategyName } from './peerLabels.ts';

export function reportFileName(report: RunReport, room: string, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
  const strategy = strategyName(report.config)
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase();
  return `peertrain-${room}-${report.config.model}-${strategy}-${stamp}.json`;
}

/** Saves `blob` as a file named `name` through a temporary object URL. */
export function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  } finally {
    // Revoke after the click has been handled; the download keeps its own reference.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}

/** Saves the report as a JSON file. */
export function downloadReport(report: RunReport, room: string): void {
  downloadBlob(
    new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }),
    reportFileName(report, room),
  );
}

/** Saves every span of the run as Chrome trace JSON (opens in Perfetto). */
export function downloadTrace(trace: ChromeTrace, report: RunReport, room: string): void {
  downloadBlob(
    new Blob([JSON.stringify(trace)], { type: 'application/json' }),
    reportFileName(report, room).replace(/\.json$/, '.trace.json'),
  );
}

/**
 * Saves the trained model as TensorFlow.js Layers files (model.json and weights.bin, both in the
 * downloads folder: `tf.loadLayersModel` finds weights.bin next to model.json). The engine (and
 * tfjs) load on first use only, so the dashboard stays light.
 */
export async function downloadModel(trained: TrainedModel): Promise<void> {
  const { buildModel, exportFiles, modelPreset } = await import('@peertrain/engine');
  const files = exportFiles(buildModel(modelPreset(trained.model)), trained.params);
  downloadBlob(new Blob([files['model.json']], { type: 'application/json' }), 'model.json');
  downloadBlob(
    new Blob([files['weights.bin'] as BlobPart], { type: 'application/octet-stream' }),
    'weights.bin',
  );
}
