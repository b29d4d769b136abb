// MNIST from public/data/mnist.bin (written by scripts/build-mnist.ts at npm install):
//   0  u32 magic 0x54534e4d ("MNST")   4 u32 count   8 u32 trainCount   12 u32 pixelsPerImage (784)
//   16 count * 784 u8 pixels (0..255), then count u8 labels; all little-endian.
// The first trainCount samples are the training set, the rest the test set (8000 / 2000).
import { throwIfAborted } from '@peertrain/base';
import type * as NodeFs from 'node:fs/promises';
import type * as NodePath from 'node:path';
import type * as BuildScript from '../../scripts/build-mnist.ts';
import { DataError } from '../errors.ts';
import type { Dataset } from './dataset.ts';

export const MNIST_MAGIC = 0x54534e4d;
/** Where the browser finds the file (Vite serves public/ at the root). */
export const MNIST_URL = '/data/mnist.bin';

export type MnistSource =
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'file'; /** default: public/data/mnist.bin, built if missing */ readonly path?: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array };

/** Parses the mnist.bin layout; throws DataError on anything malformed. */
export function parseMnist(bytes: Uint8Array): Dataset {
  if (bytes.length < 16) throw new DataError(`mnist: ${bytes.length} bytes is too short for the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== MNIST_MAGIC) throw new DataError(`mnist: bad magic 0x${magic.toString(16)}`);
  const count = view.getUint32(4, true);
  const trainCount = view.getUint32(8, true);
  const pixels = view.getUint32(12, true);
  if (pixels !== 784 || trainCount > count || count === 0) {
    throw new DataError(`mnist: bad header (count ${count}, train ${trainCount}, pixels ${pixels})`);
  }
  if (bytes.length !== 16 + count * pixels + count) {
    throw new DataError(`mnist: ${bytes.length} bytes, header says ${16 + count * pixels + count}`);
  }
  const x = new Float32Array(count * pixels);
  for (let i = 0; i < x.length; i++) x[i] = bytes[16 + i]! / 255;
  const y = bytes.slice(16 + count * pixels);
  for (let i = 0; i < count; i++) {
    if (y[i]! > 9) throw new DataError(`mnist: label ${y[i]} of sample ${i} is not a digit`);
  }
  return {
    name: 'mnist',
    inputShape: [784],
    classes: 10,
    trainX: x.subarray(0, trainCount * pixels),
    trainY: y.subarray(0, trainCount),
    testX: x.subarray(trainCount * pixels),
    testY: y.subarray(trainCount),
    trainCount,
    testCount: count - trainCount,
  };
}

const isNode = (): boolean =>
  typeof process !== 'undefined' &&
  typeof (process as { versions?: { node?: string } }).versions?.node === 'string';

/** Dynamic import hidden from the bundler: only ever reached in Node. */
const nodeImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

async function readNodeFile(path: string | undefined, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const fs = (await nodeImport('node:fs/promises')) as typeof NodeFs;
  const script = (await nodeImport(
    new URL('../../scripts/build-mnist.ts', import.meta.url).href,
  )) as typeof BuildScript;
  const file = path ?? script.MNIST_BIN_PATH;
  try {
    return new Uint8Array(await fs.readFile(file, signal ? { signal } : {}));
  } catch (err) {
    throwIfAborted(signal);
    const missing = (err as { code?: unknown }).code === 'ENOENT';
    if (!missing || path !== undefined) throw new DataError(`mnist: cannot read ${file}: ${String(err)}`);
    // the default file is missing (npm install ran with --ignore-scripts?): build and keep it
    const bytes = script.buildMnistBinary();
    const nodePath = (await nodeImport('node:path')) as typeof NodePath;
    await fs.mkdir(nodePath.dirname(file), { recursive: true });
    await fs.writeFile(file, bytes);
    return bytes;
  }
}

/**
 * Loads MNIST. Default source: in Node the file public/data/mnist.bin (built if missing), in a
 * browser `fetch('/data/mnist.bin')`.
 */
export async function loadMnist(source?: MnistSource, opts: { signal?: AbortSignal } = {}): Promise<Dataset> {
  throwIfAborted(opts.signal);
  const src: MnistSource = source ?? (isNode() ? { kind: 'file' } : { kind: 'url', url: MNIST_URL });
  switch (src.kind) {
    case 'bytes':
      return parseMnist(src.bytes);
    case 'file':
      return parseMnist(await readNodeFile(src.path, opts.signal));
    case 'url': {
      const res = await fetch(src.url, opts.signal ? { signal: opts.signal } : {});
      if (!res.ok) throw new DataError(`mnist: GET ${src.url}: ${res.status} ${res.statusText}`);
      return parseMnist(new Uint8Array(await res.arrayBuffer()));
    }
    default: {
      const unknownSource: never = src;
      throw new DataError(`mnist: unknown source ${JSON.stringify(unknownSource)}`);
    }
  }
}
