import { CompressionError } from './errors.ts';
import { HEADER_BYTES, expectBytes, newPayload } from './header.ts';
import type { PayloadHeader } from './header.ts';

// Top-k sparsification with error feedback (Deep Gradient Compression / Stich et al.).
// Each worker keeps, per exchanged tensor, the residual of what it has not sent yet; before each
// selection the residual is added to the new tensor, the k largest magnitudes of that sum are sent
// and zeroed, the rest stays for the next round. So for every element, at every round:
//   sum of values sent so far + residual = sum of inputs so far (up to fp32 rounding of the adds).
// Payload: header, u32 count k, u32 index bytes I, [I] indices as LEB128 varints of the gaps
// (first index, then index[j] - index[j-1] >= 1), [k] f32 values. At 1% density the gaps are ~100,
// so an index costs ~1.3 B instead of 4 (5.3 B per kept element instead of 8).

/** Per-tensor state of top-k: what was not sent yet ([n] float32, starts at 0). */
export class ErrorFeedback {
  readonly residual: Float32Array;
  constructor(readonly length: number) {
    this.residual = new Float32Array(length);
  }
}

/** Elements kept for `fraction` of `n`: ceil(fraction * n), at least 1 when n > 0. */
export function topkCount(n: number, fraction: number): number {
  return Math.min(n, Math.max(n > 0 ? 1 : 0, Math.ceil(fraction * n)));
}

/**
 * Adds `x` [n] into `feedback.residual`, selects the k = topkCount(n, fraction) largest magnitudes
 * (ties broken by lower index, so the selection is deterministic), returns them as a payload and
 * zeroes them in the residual. CompressionError on a non-finite input or a size mismatch.
 */
export function encodeTopk(x: Float32Array, fraction: number, feedback: ErrorFeedback): Uint8Array {
  const n = x.length;
  if (feedback.length !== n) {
    throw new CompressionError('bad-state', `error feedback holds ${feedback.length} elements, tensor ${n}`);
  }
  const acc = feedback.residual;
  for (let i = 0; i < n; i++) {
    acc[i] = acc[i]! + x[i]!;
    if (!Number.isFinite(acc[i]!)) throw new CompressionError('non-finite-input', `element ${i}: ${x[i]}`);
  }
  const k = topkCount(n, fraction);
  const chosen = selectLargest(acc, k); // ascending indices
  const indexBytes = chosen.reduce(
    (sum, idx, j) => sum + varintBytes(j === 0 ? idx : idx - chosen[j - 1]!),
    0,
  );
  const valuesAt = HEADER_BYTES + 8 + indexBytes;
  const { out, view } = newPayload('topk', n, valuesAt + 4 * k);
  view.setUint32(HEADER_BYTES, k, true);
  view.setUint32(HEADER_BYTES + 4, indexBytes, true);
  let at = HEADER_BYTES + 8;
  let prev = 0;
  chosen.forEach((idx, j) => {
    at = writeVarint(out, at, j === 0 ? idx : idx - prev);
    prev = idx;
    view.setFloat32(valuesAt + 4 * j, acc[idx]!, true);
    acc[idx] = 0;
  });
  return out;
}

/** Indices of the k largest |a[i]|, ascending; among equal magnitudes the lower indices win. */
function selectLargest(a: Float32Array, k: number): number[] {
  if (k === 0) return [];
  const mags = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) mags[i] = Math.abs(a[i]!);
  const threshold = mags.sort()[a.length - k]!; // the k-th largest magnitude
  let above = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]!) > threshold) above++;
  let ties = k - above; // elements equal to the threshold still to take, lowest index first
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const m = Math.abs(a[i]!);
    if (m > threshold || (m === threshold && ties-- > 0)) out.push(i);
  }
  return out;
}

function varintBytes(v: number): number {
  let bytes = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(out: Uint8Array, at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at++] = v;
  return at;
}

/** Writes (or adds) the payload's values into `out` (zeros elsewhere when writing). */
export function decodeTopkInto(h: PayloadHeader, byteLength: number, out: Float32Array, add: boolean): void {
  const { view } = h;
  const n = h.length;
  if (byteLength < HEADER_BYTES + 8)
    throw new CompressionError('truncated', `topk payload of ${byteLength} B`);
  const k = view.getUint32(HEADER_BYTES, true);
  const indexBytes = view.getUint32(HEADER_BYTES + 4, true);
  if (k > n) throw new CompressionError('bad-length', `topk payload keeps ${k} of ${n} elements`);
  const valuesAt = HEADER_BYTES + 8 + indexBytes;
  expectBytes('topk', byteLength, valuesAt + 4 * k);
  // Parse and check every index and value before touching `out`.
  const indices = new Uint32Array(k);
  let at = HEADER_BYTES + 8;
  let prev = -1;
  for (let j = 0; j < k; j++) {
    let gap = 0;
    let scale = 1;
    for (let b = 0; ; b++) {
      if (at >= valuesAt || b === 5)
        throw new CompressionError('bad-index', `topk index ${j} is a malformed varint`);
      const byte = view.getUint8(at++);
      gap += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const idx = j === 0 ? gap : prev + gap;
    if ((j > 0 && gap === 0) || idx >= n) {
      throw new CompressionError('bad-index', `topk index ${j} is ${idx} (previous ${prev}, length ${n})`);
    }
    indices[j] = idx;
    prev = idx;
  }
  if (at !== valuesAt)
    throw new CompressionError('bad-index', `topk indices end at ${at}, expected ${valuesAt}`);
  for (let j = 0; j < k; j++) {
    const v = view.getFloat32(valuesAt + 4 * j, true);
    if (!Number.isFinite(v)) throw new CompressionError('bad-value', `topk value ${j} is ${v}`);
  }
  if (!add) out.fill(0);
  for (let j = 0; j < k; j++) {
    const i = indices[j]!;
    const v = view.getFloat32(valuesAt + 4 * j, true);
    out[i] = add ? out[i]! + v : v;
  }
}
