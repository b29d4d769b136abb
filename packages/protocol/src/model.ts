import { z } from 'zod';

// A model is a serializable list of layers; the loss (softmax cross-entropy over `classes`)
// follows the last layer. Shapes flow from `inputShape` (without the batch dimension).
export const LayerSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('dense'), units: z.number().int().positive() }),
  z.object({
    kind: z.literal('conv2d'),
    filters: z.number().int().positive(),
    kernel: z.number().int().positive(),
    stride: z.number().int().positive().default(1),
    padding: z.enum(['same', 'valid']).default('same'),
  }),
  z.object({
    kind: z.literal('maxpool'),
    size: z.number().int().positive(),
    stride: z.number().int().positive().optional(),
  }),
  z.object({ kind: z.literal('flatten') }),
  z.object({ kind: z.literal('relu') }),
  z.object({ kind: z.literal('tanh') }),
]);
export type LayerSpec = z.infer<typeof LayerSpecSchema>;

export const ModelSpecSchema = z.object({
  name: z.string().min(1),
  /** Per-sample input shape, e.g. [784] for a flat MNIST digit or [28, 28, 1] for an image (NHWC). */
  inputShape: z.array(z.number().int().positive()).min(1),
  layers: z.array(LayerSpecSchema).min(1),
  /** Number of classes of the softmax cross-entropy loss; the last layer must output this many. */
  classes: z.number().int().positive(),
});
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/**
 * Whether the output of a stage that ends before layer `end` is zero-gated: wherever it is 0, the
 * stage's backward passes nothing of its gradient on. True when layer end - 1 is a relu, or a
 * max-pool or flatten over a zero-gated output (a pooled 0 is the maximum of a window of ReLU
 * outputs that are all 0, so whichever tap takes the gradient has a zero ReLU derivative).
 * False for end 0 (the data) and every other layer (a tanh or dense output, a conv).
 */
export function zeroGatedOutput(layers: readonly LayerSpec[], end: number): boolean {
  for (let i = end - 1; i >= 0; i--) {
    const kind = layers[i]?.kind;
    if (kind === 'relu') return true;
    if (kind !== 'maxpool' && kind !== 'flatten') return false;
  }
  return false;
}
