/** An input, label or parameter array does not have the size the model expects. */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

/** A dataset file or cached shard is malformed, or could not be loaded. */
export class DataError extends Error {
  override readonly name = 'DataError';
}
