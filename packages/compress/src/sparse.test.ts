import { mulberry32 } from '@peertrain/base';
import { describe, expect, it } from 'vitest';
import { decode, decodeInto } from './codec.ts';
import { codeOf } from './testing.ts';
import { encodeFp16 } from './fp16.ts';
import { HEADER_BYTES } from './header.ts';
import { countSent, encodeSparse, sparseBytes } from './sparse.ts';

/** [n] values, about `zeros` of them +0, the rest in [-1, 1), seeded. */
function reluLike(n: number, seed: number, zeros = 0.5): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rnd() < zeros ? 0 : rnd() * 2 - 1));
}

const bitsOf = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

describe('sparse (zero skipping)', () => {
  it('round-trips every float32 bit for bit, -0 and NaN payloads included, at every length', () => {
    for (const n of [0, 1, 31, 32, 33, 64, 1000]) {
      const x = reluLike(n, n + 1);
      const specials = [-0, NaN, Infinity, -Infinity, 1e-45, -3.4e38, 0];
      specials.forEach((v, i) => i < n && (x[(i * 7) % n] = v));
      if (n > 3) bitsOf(x)[3] = 0x7fc01234; // a NaN with a payload
      const payload = encodeSparse(x, 'sparse');
      expect(payload.byteLength).toBe(sparseBytes('sparse', n, countSent(x)));
      expect([...bitsOf(decode(payload))]).toEqual([...bitsOf(x)]);
    }
  });

  it('half zeros cost 0.53x of float32; fp16 values 0.28x; all non-zero costs the mask more', () => {
    const n = 4096;
    const x = reluLike(n, 3);
    const sent = countSent(x);
    expect(sent / n).toBeGreaterThan(0.45);
    expect(sent / n).toBeLessThan(0.55);
    const dense = 4 * n;
    expect(encodeSparse(x, 'sparse').byteLength / dense).toBeCloseTo((n / 8 + 4 * sent + 8 * 4) / 4 / n, 2);
    expect(encodeSparse(x, 'sparse').byteLength / dense).toBeLessThan(0.56);
    expect(encodeSparse(x, 'sparse-fp16').byteLength / dense).toBeLessThan(0.31);
    const full = reluLike(n, 4, 0);
    expect(encodeSparse(full, 'sparse').byteLength).toBe(HEADER_BYTES + n / 8 + 4 * n);
  });

  it('sparse-fp16 decodes to what fp16 decodes, zeros included', () => {
    const x = reluLike(1000, 5);
    x[10] = -0;
    x[11] = 70000; // past a half's range: Infinity in both
    x[12] = 1e-6; // a half subnormal
    expect([...decode(encodeSparse(x, 'sparse-fp16'))]).toEqual([...decode(encodeFp16(x))]);
  });

  it('adds into a buffer, and decodes from an odd offset inside a larger buffer', () => {
    const x = reluLike(333, 6);
    for (const codec of ['sparse', 'sparse-fp16'] as const) {
      const payload = encodeSparse(x, codec);
      const exact = decode(payload);
      const framed = new Uint8Array(payload.byteLength + 3);
      framed.set(payload, 1);
      const inner = framed.subarray(1, 1 + payload.byteLength);
      expect([...bitsOf(decode(inner))]).toEqual([...bitsOf(exact)]);
      const out = Float32Array.from({ length: 333 }, (_, i) => i);
      decodeInto(inner, out, { add: true });
      expect([...out]).toEqual([...exact].map((v, i) => Math.fround(i + v)));
    }
  });

  it('refuses a truncated or extended payload and a mask past the length, leaving the output untouched', () => {
    const x = reluLike(40, 7);
    const good = encodeSparse(x, 'sparse');
    const out = new Float32Array(40).fill(9);
    const untouched = (bytes: Uint8Array): string => {
      const code = codeOf(() => decodeInto(bytes, out));
      expect([...out].every((v) => v === 9)).toBe(true);
      return code;
    };
    expect(untouched(good.subarray(0, good.byteLength - 4))).toBe('truncated');
    expect(untouched(good.subarray(0, HEADER_BYTES + 4))).toBe('truncated');
    const longer = new Uint8Array(good.byteLength + 4);
    longer.set(good);
    expect(untouched(longer)).toBe('bad-length');
    const past = good.slice();
    new DataView(past.buffer).setUint32(HEADER_BYTES + 4, 0x100, true); // element 40 of 40
    expect(untouched(past)).toBe('bad-index');
    // One more mask bit than values: the length no longer fits.
    const extra = good.slice();
    const dv = new DataView(extra.buffer);
    const w0 = dv.getUint32(HEADER_BYTES, true);
    const free = [...Array(32).keys()].find((j) => ((w0 >>> j) & 1) === 0)!;
    dv.setUint32(HEADER_BYTES, (w0 | (1 << free)) >>> 0, true);
    expect(untouched(extra)).toBe('truncated');
  });

  it('decode refuses a header that claims more elements than the payload holds, before allocating', () => {
    for (const payload of [encodeSparse(new Float32Array(8), 'sparse'), encodeFp16(new Float32Array(8))]) {
      const lying = payload.slice();
      new DataView(lying.buffer).setUint32(4, 1 << 27, true); // 128 M elements in a few bytes
      expect(codeOf(() => decode(lying))).toBe('truncated');
      expect(() => decode(lying)).toThrow(/cannot hold 134217728 elements/);
    }
  });
});
