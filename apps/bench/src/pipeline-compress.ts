import { parseRunReport } from '@peertrain/protocol';
import type { RunConfigInput, RunReport } from '@peertrain/protocol';
import { describeError } from './hosted.ts';
import type { HostedRoom } from './hosted.ts';
import { fmt, fmtRatio, markdownTable } from './table.ts';

// Part 4's activation-compression runs (issue 13): the MNIST CNN cut into 4 stages, 1F1B, trained
// on the same seed with the tensors that cross stages as float32 and as fp16
// (--activation-compress), each with every zero sent and with zeros skipped (activationSkipZeros).
// Figures: bytes between stages per step (the coordinator's, from the workers' send spans) and the
// final test accuracy, against the first run (float32, every zero sent). Pure but for
// `runCompressPair`.

export type ActivationCodec = 'none' | 'fp16' | 'int8';

/** How the tensors crossed: the codec, and whether zeros were skipped. */
export interface ActivationVariant {
  codec: ActivationCodec;
  skipZeros: boolean;
}

/** "fp16", "fp16, zeros skipped". */
export function variantLabel(v: ActivationVariant): string {
  return v.skipZeros ? `${v.codec}, zeros skipped` : v.codec;
}

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
  variants: ActivationVariant[];
}

/**
 * Issue 13's targets: fp16 at most 0.51x the bytes, final accuracy within 0.3 point (skipping
 * zeros, lossless, must end on the exact run's accuracy and loss).
 */
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
    variants: [
      { codec: 'none', skipZeros: false },
      { codec: 'fp16', skipZeros: false },
      { codec: 'none', skipZeros: true },
      { codec: 'fp16', skipZeros: true },
    ],
  };
}

export function compressConfig(s: CompressPairSettings, v: ActivationVariant): RunConfigInput {
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
    activationCompress: v.codec,
    activationSkipZeros: v.skipZeros,
    seed: s.seed,
    backend: 'wasm',
    // Only the final evaluation: the accuracy compared is that of the last step.
    evalEvery: 0,
  };
}

export type CompressRow = { variant: ActivationVariant } & (
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

export function compressRow(variant: ActivationVariant, report: RunReport): CompressRow {
  return {
    variant,
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
  variant: ActivationVariant;
  /** Bytes between stages / the exact run's. */
  bytesRatio: number | null;
  /** (accuracy - the exact run's accuracy) in points: negative = worse. */
  accuracyDiffPoints: number | null;
  /**
   * The targets met: fp16 (zeros sent) at most 0.51x the bytes; every lossy run within 0.3 point;
   * a lossless one (float32, zeros skipped) the same accuracy and final loss as the exact run.
   */
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
    const { variant } = r;
    if (!base?.ok || !r.ok) return { variant, bytesRatio: null, accuracyDiffPoints: null, met: null };
    const bytesRatio =
      r.bytesBetweenStagesPerStep !== null && base.bytesBetweenStagesPerStep
        ? r.bytesBetweenStagesPerStep / base.bytesBetweenStagesPerStep
        : null;
    const accuracyDiffPoints = 100 * (r.testAccuracy - base.testAccuracy);
    const lossless = variant.codec === 'none';
    const accOk = lossless
      ? r.testAccuracy === base.testAccuracy && r.finalLoss === base.finalLoss
      : Math.abs(accuracyDiffPoints) <= COMPRESS_TARGETS.accuracyPoints;
    const bytesOk =
      variant.codec !== 'fp16' ||
      variant.skipZeros ||
      (bytesRatio !== null && bytesRatio <= COMPRESS_TARGETS.bytesRatio);
    return { variant, bytesRatio, accuracyDiffPoints, met: accOk && bytesOk };
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
  for (const variant of s.variants) {
    signal?.throwIfAborted();
    const label = variantLabel(variant);
    try {
      // 120 CNN steps at 4 stages: about a minute here; the limit leaves room for a loaded machine.
      const res = await hosted.run({
        config: compressConfig(s, variant),
        waitMs: 60_000,
        timeoutMs: 600_000,
      });
      const row = compressRow(variant, parseRunReport(res.report));
      rows.push(row);
      if (row.ok)
        log(
          `pipeline compress ${label}: ${fmt(row.bytesBetweenStagesPerStep ?? Number.NaN, 0)} B/step between stages, ` +
            `accuracy ${fmt(row.testAccuracy, 4)}, step ${fmt(row.stepMsMedian, 0)} ms`,
        );
    } catch (err) {
      signal?.throwIfAborted();
      rows.push({ variant, ok: false, error: describeError(err) });
      log(`pipeline compress ${label} failed: ${describeError(err)}`);
    }
  }
  return { settings: s, rows, comparisons: compareCompress(rows) };
}

/** The section: a row per run, then the verdict against the targets. */
export function renderCompress(part: CompressPart): string[] {
  const s = part.settings;
  const cmp = new Map(part.comparisons.map((c) => [variantLabel(c.variant), c]));
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
      const label = variantLabel(r.variant);
      if (!r.ok) return [label, `failed: ${r.error}`, '-', '-', '-', '-', '-', '-'];
      const c = cmp.get(label);
      const diff = c?.accuracyDiffPoints;
      return [
        label,
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
  const verdicts = part.comparisons.map((c) => {
    const { codec, skipZeros } = c.variant;
    const bytesTarget =
      codec === 'fp16' && !skipZeros ? ` (target at most ${COMPRESS_TARGETS.bytesRatio}x)` : '';
    const accTarget =
      codec === 'none'
        ? 'target: the same accuracy and loss'
        : `target within ${COMPRESS_TARGETS.accuracyPoints}`;
    return (
      `- ${variantLabel(c.variant)}: bytes ${fmtRatio(c.bytesRatio ?? Number.NaN)} of fp32${bytesTarget}, ` +
      `accuracy ${c.accuracyDiffPoints === null ? '-' : c.accuracyDiffPoints.toFixed(2)} pt ` +
      `(${accTarget}): ${c.met === null ? 'no result' : c.met ? 'met' : 'NOT met'}.`
    );
  });
  return [
    `### Compressed activations (MNIST CNN, P=${s.stages} 1f1b M=${s.microBatches}, ${s.steps} steps, seed ${s.seed}, partition ${s.partition})`,
    '',
    ...verdicts,
    '',
    table,
    '',
    '"bytes/step between stages": activations forward and their gradients backward, all stages (the report\'s ' +
      '`pipeline.bytesBetweenStagesPerStep`); "x exact": against the first row (float32, every zero sent); ' +
      '"zeros skipped": `activationSkipZeros` (the default), lossless; "test accuracy": the final evaluation on ' +
      'the MNIST test set.',
  ];
}
