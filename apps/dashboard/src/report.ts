import type { RunReport } from '@peertrain/coordinator';
import { strategyName } from './peerLabels.ts';

export function reportFileName(report: RunReport, room: string, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
  const strategy = strategyName(report.config)
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase();
  return `peertrain-${room}-${report.config.model}-${strategy}-${stamp}.json`;
}

/** Saves the report as a JSON file through a temporary object URL. */
export function downloadReport(report: RunReport, room: string): void {
  const blob = new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = reportFileName(report, room);
    document.body.appendChild(a);
    a.click();
    a.remove();
  } finally {
    // Revoke after the click has been handled; the download keeps its own reference.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}
