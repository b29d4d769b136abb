/** A classification dataset held in memory as flat typed arrays. */
export interface Dataset {
  readonly name: string;
  /** Per-sample shape; the arrays hold prod(inputShape) floats per sample. */
  readonly inputShape: readonly number[];
  readonly classes: number;
  /** [trainCount * prod(inputShape)], MNIST pixels scaled to 0..1 */
  readonly trainX: Float32Array;
  /** [trainCount] class indices */
  readonly trainY: Uint8Array;
  readonly testX: Float32Array;
  readonly testY: Uint8Array;
  readonly trainCount: number;
  readonly testCount: number;
}

/**
 * A run of consecutive samples: a whole split or one worker's shard. `first` is the global
 * training-set index of row 0, so batch indices (always global) map to rows as `i - first`.
 */
export interface Samples {
  readonly x: Float32Array; // [count * sampleSize]
  readonly y: Uint8Array; // [count]
  readonly count: number;
  readonly first: number;
}

export const sampleSize = (inputShape: readonly number[]): number => inputShape.reduce((a, b) => a * b, 1);

/** The training split as `Samples` (first = 0). */
export function trainSamples(data: Dataset): Samples {
  return { x: data.trainX, y: data.trainY, count: data.trainCount, first: 0 };
}
