// Zero skipping between pipeline stages, both ways (which outputs are zero-gated: protocol's
// zeroGatedOutput). A ReLU's output is about half zeros, and those
// travel as a mask (packages/compress sparse.ts). Its gradient on the way back is dense, but where
// the output was zero the sending stage throws it away: the ReLU's backward multiplies it by
// step(x) = 0 there. So the stage that received the activations zeroes those elements of the
// gradient it sends back (gateGradient), and the gradient is as sparse as the activations were.
// Exact: the previous stage computes the same bits as from the dense gradient (0 * finite = 0);
// non-finite values are left alone, since 0 * Infinity is NaN there.

/** A bit per element of `x` (bit i % 32 of word i >> 5), set where x[i] is not 0 (nor -0). */
export function nonZeroMask(x: Float32Array): Int32Array {
  const bits = new Int32Array(x.buffer, x.byteOffset, x.length);
  const mask = new Int32Array(Math.ceil(x.length / 32));
  for (let w = 0; w < mask.length; w++) {
    const base = w * 32;
    const end = Math.min(32, x.length - base);
    let m = 0;
    for (let j = 0; j < end; j++) {
      const b = bits[base + j]! & 0x7fffffff; // -0 is a zero too
      m |= ((b | -b) >>> 31) << j;
    }
    mask[w] = m;
  }
  return mask;
}

/**
 * Zeroes dx where `mask` (nonZeroMask of the activations dx is the gradient of) has no bit, except
 * non-finite values. In place; returns dx. RangeError when the mask is for another length.
 */
export function gateGradient(dx: Float32Array, mask: Int32Array): Float32Array {
  if (mask.length !== Math.ceil(dx.length / 32))
    throw new RangeError(`a mask of ${mask.length} words for a gradient of ${dx.length} elements`);
  const bits = new Int32Array(dx.buffer, dx.byteOffset, dx.length);
  for (let w = 0; w < mask.length; w++) {
    const base = w * 32;
    const end = Math.min(32, dx.length - base);
    const m = mask[w]!;
    for (let j = 0; j < end; j++) {
      const b = bits[base + j]!;
      // Kept: the activation was not zero, or the value is Infinity / NaN (exponent all ones).
      const keep = ((m >>> j) & 1) | ((((b >>> 23) & 0xff) + 1) >>> 8);
      bits[base + j] = b & -keep;
    }
  }
  return dx;
}
