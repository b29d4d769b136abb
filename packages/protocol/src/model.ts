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
