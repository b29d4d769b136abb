import { parseRunReport } from '@peertrain/protocol';
import type { RunConfigInput, RunReport } from '@peertrain/protocol';
import { describeError } from './hosted.ts';
import type { HostedRoom } from './hosted.ts';
import { fmt, fmtRatio, markdownTable } from './table.ts';

// Part 4's activation-compression pair (issue 13): the MNIST CNN cut into 4 stages, 1F1B, trained
// twice on the same seed, once with the tensors that cross stages in fp32 and once in fp16
// (--activation-compress). Figures: bytes between stages per step (the coordinator's, from the
// workers' send spans) and the final test accuracy. Pure but for `runCompressPair`.

export type ActivationCodec = 'none' | 'fp16' | 'int8';

export interface CompressPairSettings {
  model: 'cnn';
  stages: number;
  microBatches: number;
  steps: number;
  batch: number;
  /** Explicit, so both runs cut the same layers: conv+relu, pool+conv, relu+pool, flatten+dense. */
  partition: string;
  seed: number;
  /** The first is the exact run the others are measured against. */
  codecs: ActivationCodec[];
}

/** Issue 13's targets: fp16 at most 0.51x the bytes, final accuracy within 0.3 point. */
export const COMPRESS_TARGETS = { bytesRatio: 0.51, accuracyPoints: 0.3 } as const;

/** Full: 120 steps (enough for a meaningful accuracy); quick: 20 (a smoke check). */
export function compressPairSettings(quick: boolean): CompressPairSettings {
  return {
    model: 'cnn',
    stages: 4,
    microBatches: 8,
    steps: quick ? 20 : 120,
    batch: 128,
    partition: '0-1,2-3,4-5,6-7',
    seed: 42,
    codecs: ['none', 'fp16'],
  };
}

export function compressConfig(s: CompressPairSettings, codec: ActivationCodec): RunConfigInput {
  return {
    strategy: 'pipeline',
    model: s.model,
    dataset: 'mnist',
    workers: s.stages,
    steps: s.steps,
    batch: s.batch,
    schedule: '1f1b',
    microBatches: s.microBatches,
    partition: s.partition,
    activationCompress: codec,
    seed: s.seed,
    backend: 'wasm',
    // Only the final evaluation: the accuracy compared is that of the last step.
    evalEvery: 0,
  };
}

export type CompressRow = { codec: ActivationCodec } & (
  | {
      ok: true;
      /** Bytes the stages sent each other per step; null when the report does not say. */
      bytesBetweenStagesPerStep: number | null;
      testAccuracy: number;
      finalLoss: number;
      stepMsMedian: number;
      bubbleMeasured: number | null;
      wallMs: number;
    }
  | { ok: false; error: string }
);

export function compressRow(codec: ActivationCodec, report: RunReport): CompressRow {
  return {
    codec,
    ok: true,
    bytesBetweenStagesPerStep: report.pipeline?.bytesBetweenStagesPerStep ?? null,
    testAccuracy: report.testAccuracy,
    finalLoss: report.finalLoss,
    stepMsMedian: report.stepMsMedian,
    bubbleMeasured: report.pipeline?.bubbleMeasured ?? null,
    wallMs: report.wallMs,
  };
}

export interface CompressComparison {
  codec: ActivationCodec;
  /** Bytes between stages / the exact run's. */
  bytesRatio: number | null;
  /** (accuracy - the exact run's accuracy) in points: negative = worse. */
  accuracyDiffPoints: number | null;
  /** Both targets met (bytesRatio is only a target for fp16). */
  met: boolean | null;
}

export interface CompressPart {
  settings: CompressPairSettings;
  rows: CompressRow[];
  comparisons: CompressComparison[];
}

/** Each compressed row against the first (exact) row; null figures where a run failed. */
export function compareCompress(rows: readonly CompressRow[]): CompressComparison[] {
  const [base, ...rest] = rows;
  return rest.map((r) => {
    if (!base?.ok || !r.ok) return { codec: r.codec, bytesRatio: null, accuracyDiffPoints: null, met: null };
    const bytesRatio =
      r.bytesBetweenStagesPerStep !== null && base.bytesBetweenStagesPerStep
        ? r.bytesBetweenStagesPerStep / base.bytesBetweenStagesPerStep
        : null;
    const accuracyDiffPoints = 100 * (r.testAccuracy - base.testAccuracy);
    const accOk = Math.abs(accuracyDiffPoints) <= COMPRESS_TARGETS.accuracyPoints;
    const bytesOk = r.codec !== 'fp16' || (bytesRatio !== null && bytesRatio <= COMPRESS_TARGETS.bytesRatio);
    return { codec: r.codec, bytesRatio, accuracyDiffPoints, met: accOk && bytesOk };
  });
}

/** Runs the pair on the hosted room, one after the other; a failed run is its row's error. */
export async function runCompressPair(
  hosted: HostedRoom,
  s: CompressPairSettings,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<CompressPart> {
  const rows: CompressRow[] = [];
  for (const codec of s.codecs) {
    signal?.throwIfAborted();
    try {
      // 120 CNN steps at 4 stages: about a minute here; the limit leaves room for a loaded machine.
      const res = await hosted.run({ config: compressConfig(s, codec), waitMs: 60_000, timeoutMs: 600_000 });
      const row = compressRow(codec, parseRunReport(res.report));
      rows.push(row);
      if (row.ok)
        log(
          `pipeline compress ${codec}: ${fmt(row.bytesBetweenStagesPerStep ?? Number.NaN, 0)} B/step between stages, ` +
            `accuracy ${fmt(row.testAccuracy, 4)}, step ${fmt(row.stepMsMedian, 0)} ms`,
        );
    } catch (err) {
      signal?.throwIfAborted();
      rows.push({ codec, ok: false, error: describeError(err) });
      log(`pipeline compress ${codec} failed: ${describeError(err)}`);
    }
  }
  return { settings: s, rows, comparisons: compareCompress(rows) };
}

/** The pair's section: a row per codec, then the verdict against the targets. */
export function renderCompress(part: CompressPart): string[] {
  const s = part.settings;
  const cmp = new Map(part.comparisons.map((c) => [c.codec, c]));
  const table = markdownTable(
    [
      'activations',
      'bytes/step between stages',
      'x exact',
      'test accuracy',
      'vs exact',
      'final loss',
      'step ms',
      'bubble',
    ],
    part.rows.map((r) => {
      if (!r.ok) return [r.codec, `failed: ${r.error}`, '-', '-', '-', '-', '-', '-'];
      const c = cmp.get(r.codec);
      const diff = c?.accuracyDiffPoints;
      return [
        r.codec,
        fmt(r.bytesBetweenStagesPerStep ?? Number.NaN, 0),
        c ? fmtRatio(c.bytesRatio ?? Number.NaN) : '1.00x',
        fmt(r.testAccuracy, 4),
        diff === undefined || diff === null ? '-' : `${diff >= 0 ? '+' : ''}${diff.toFixed(2)} pt`,
        fmt(r.finalLoss, 4),
        fmt(r.stepMsMedian, 0),
        fmt(r.bubbleMeasured ?? Number.NaN, 3),
      ];
    }),
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
  const verdicts = part.comparisons.map(
    (c) =>
      `- ${c.codec}: bytes ${fmtRatio(c.bytesRatio ?? Number.NaN)} of fp32 (target at most ${COMPRESS_TARGETS.bytesRatio}x), ` +
      `accuracy ${c.accuracyDiffPoints === null ? '-' : c.accuracyDiffPoints.toFixed(2)} pt ` +
      `(target within ${COMPRESS_TARGETS.accuracyPoints}): ${c.met === null ? 'no result' : c.met ? 'met' : 'NOT met'}.`,
  );
  return [
    `### Compressed activations (MNIST CNN, P=${s.stages} 1f1b M=${s.microBatches}, ${s.steps} steps, seed ${s.seed}, partition ${s.partition})`,
    '',
    ...verdicts,
    '',
    table,
    '',
    '"bytes/step between stages": activations forward and their gradients backward, all stages (the report\'s ' +
      '`pipeline.bytesBetweenStagesPerStep`); "test accuracy": the final evaluation on the MNIST test set.',
  ];
}
