import { tf } from './tf.ts';
import type { Tensor } from './tf.ts';

export type LossAndGrad = {
  /** Scalar: sum over the batch of -log softmax(logits)[label], divided by `divisor`. */
  readonly loss: Tensor;
  /** [B, classes]: (softmax(logits) - onehot(labels)) / divisor */
  readonly dlogits: Tensor;
};

/**
 * Softmax cross-entropy with integer labels, and its gradient with respect to the logits.
 * `divisor` defaults to the batch size (mean loss). A pipeline's micro-batch passes the size of
 * the whole batch, so that summing its micro-batches' gradients gives the full batch's mean.
 * Must run inside tf.tidy (the caller owns the two results).
 *
 * logits: [B, classes] float32; labels: [B] int32 class indices.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, divisor = logits.shape[0]): LossAndGrad {
  const classes = logits.shape[1]!;
  const onehot = tf.oneHot(labels, classes); // [B, classes] int32
  const logProbs = tf.logSoftmax(logits); // [B, classes], stable (max subtracted)
  const loss = tf.div(tf.neg(tf.sum(tf.mul(logProbs, onehot))), divisor);
  const dlogits = tf.div(tf.sub(tf.exp(logProbs), onehot), divisor);
  return { loss, dlogits };
}
