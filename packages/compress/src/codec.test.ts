import { mulberry32 } from '@peertrain/base';
import { ConfigError } from '@peertrain/protocol';
import { describe, expect, it } from 'vitest';
import { createCompressor, decode, decodeInto, encodePayload, relativeError } from './codec.ts';
import { codeOf } from './testing.ts';
import { encodeFp16, fp16Bytes, fromHalfBits, toHalfBits } from './fp16.ts';
import { encodeInt8, int8Bytes } from './int8.ts';
import { formatCompression, parseCompression } from './spec.ts';
import { ErrorFeedback, encodeTopk, topkCount } from './topk.ts';

/** [n] values in [-amp, amp), seeded. */
function data(n: number, seed: number, amp = 1): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * amp);
}

describe('parseCompression', () => {
  it('reads every form and formats it back', () => {
    for (const text of ['none', 'fp16', 'int8', 'topk:0.01', 'topk:1', 'powersgd:4']) {
      expect(formatCompression(parseCompression(text))).toBe(text);
    }
    expect(parseCompression('topk:0.01')).toEqual({ kind: 'topk', fraction: 0.01 });
    expect(parseCompression('powersgd:4')).toEqual({ kind: 'powersgd', rank: 4 });
  });

  it('refuses bad specs with ConfigError', () => {
    for (const text of [
      '',
      'fp8',
      'int8:2',
      'topk',
      'topk:0',
      'topk:1.5',
      'topk:abc',
      'topk:-0.1',
      'powersgd',
      'powersgd:0',
      'powersgd:1.5',
      'powersgd:4:1',
      'none:1',
    ]) {
      expect(() => parseCompression(text), text).toThrow(ConfigError);
    }
  });
});

describe('fp16', () => {
  it('every half value round-trips bit-exactly (NaNs stay NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const v = fromHalfBits(h);
      if (Number.isNaN(v)) expect(Number.isNaN(fromHalfBits(toHalfBits(v)))).toBe(true);
      else if (toHalfBits(v) !== h) expect.fail(`half ${h} (${v}) came back as ${toHalfBits(v)}`);
    }
  });

  it('rounds to nearest, ties to even, overflow to Infinity', () => {
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even (1)
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: even (1 + 2^-9)
    expect(toHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(65520)).toBe(0x7c00); // tie with 65536: to even, Infinity
    expect(toHalfBits(-1e9)).toBe(0xfc00);
    expect(toHalfBits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(toHalfBits(2 ** -25 * 1.5)).toBe(1);
    expect(toHalfBits(3 * 2 ** -25)).toBe(2); // tie between subnormals 1 and 2: even
    expect(toHalfBits(-0)).toBe(0x8000);
  });

  it('round-trip error within half an ulp (2^-11 relative) and 0.5x of fp32 bytes', () => {
    const x = data(10_000, 1, 10);
    const bytes = encodeFp16(x);
    expect(bytes.byteLength).toBe(fp16Bytes(x.length));
    expect(bytes.byteLength / (4 * x.length)).toBeLessThanOrEqual(0.51);
    const y = decode(bytes);
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -11 + 2 ** -25);
    }
  });
});

describe('fp16 payloads', () => {
  it('encode writes the bits toHalfBits gives, for every kind of float32', () => {
    // Random bit patterns reach every exponent: zeros, subnormals, normals, Infinity and NaN.
    const rnd = mulberry32(11);
    const x = new Float32Array(200_000);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(rnd() * 2 ** 32);
    // and the edges of the fast path, with their neighbours
    const edges = [2 ** -14, 65504, 65519.99, 65520, 65536, 2 ** -14 * (1 - 2 ** -24), 1 + 2 ** -11];
    const y = Float32Array.from(edges.flatMap((e) => [e, -e]));
    for (const v of [x, y]) {
      const view = new DataView(encodeFp16(v).buffer);
      for (let i = 0; i < v.length; i++) {
        const got = view.getUint16(8 + 2 * i, true);
        if (got !== toHalfBits(v[i]!)) expect.fail(`${v[i]} encoded as ${got}, not ${toHalfBits(v[i]!)}`);
      }
    }
  });

  it('decodes a payload at an odd offset (as a received frame may carry it) to the same values', () => {
    const x = data(1001, 6, 3);
    const a = encodeFp16(x);
    const framed = new Uint8Array(a.byteLength + 13);
    framed.set(a, 7);
    const odd = decode(framed.subarray(7, 7 + a.byteLength));
    expect(odd).toEqual(decode(a));
    const sum = Float32Array.from(x);
    decodeInto(framed.subarray(7, 7 + a.byteLength), sum, { add: true });
    for (let i = 0; i < x.length; i++) expect(sum[i]).toBe(Math.fround(x[i]! + odd[i]!));
  });
});

describe('int8', () => {
  it("draws once from the caller's generator per payload (its rounding stream is seeded by that draw)", () => {
    const source = mulberry32(5);
    let draws = 0;
    const random = (): number => (draws++, source());
    const x = data(3000, 4, 5);
    const first = encodeInt8(x, { random, bucketElems: 64 });
    expect(draws).toBe(1);
    // A second payload from the same generator rounds differently (a new seed), a fresh one alike.
    expect(encodeInt8(x, { random, bucketElems: 64 })).not.toEqual(first);
    expect(draws).toBe(2);
    expect(encodeInt8(x, { random: mulberry32(5), bucketElems: 64 })).toEqual(first);
  });

  it('is deterministic given a seed, within one step of each bucket scale, 0.26x of fp32 bytes', () => {
    const x = data(10_000, 2, 3);
    const a = encodeInt8(x, { random: mulberry32(7) });
    expect(encodeInt8(x, { random: mulberry32(7) })).toEqual(a);
    expect(encodeInt8(x, { random: mulberry32(8) })).not.toEqual(a);
    expect(a.byteLength).toBe(int8Bytes(x.length));
    expect(a.byteLength / (4 * x.length)).toBeLessThanOrEqual(0.26);
    const y = decode(a);
    for (let b = 0; b < x.length; b += 256) {
      const bucket = x.subarray(b, b + 256);
      const scale = Math.max(...Array.from(bucket, Math.abs)) / 127;
      for (let i = b; i < Math.min(b + 256, x.length); i++) {
        expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(scale * 1.0001);
      }
    }
  });

  it('decodes a payload that sits inside a larger buffer (as a received frame carries it)', () => {
    const x = data(1000, 5);
    const a = encodeInt8(x, { random: mulberry32(3) });
    const framed = new Uint8Array(a.byteLength + 13);
    framed.set(a, 7);
    expect(decode(framed.subarray(7, 7 + a.byteLength))).toEqual(decode(a));
  });

  it('is unbiased: the mean of many decodes converges to x', () => {
    const x = data(64, 3);
    const trials = 4000;
    const mean = new Float64Array(x.length);
    const random = mulberry32(11);
    for (let t = 0; t < trials; t++) {
      const y = decode(encodeInt8(x, { random, bucketElems: 64 }));
      for (let i = 0; i < x.length; i++) mean[i]! += y[i]! / trials;
    }
    const scale = Math.max(...Array.from(x, Math.abs)) / 127;
    // Each decode is x + scale * (Bernoulli - p), std <= scale / 2; 5 sigma of the mean.
    const bound = (5 * scale) / 2 / Math.sqrt(trials);
    let biasSum = 0;
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(mean[i]! - x[i]!)).toBeLessThan(bound);
      biasSum += mean[i]! - x[i]!;
    }
    // The average bias over all elements is far smaller still (a deterministic rounding would not be).
    expect(Math.abs(biasSum / x.length)).toBeLessThan(bound / 4);
  });

  it('an all-zero bucket and an empty tensor round-trip', () => {
    expect(decode(encodeInt8(new Float32Array(300), { random: mulberry32(1) }))).toEqual(
      new Float32Array(300),
    );
    expect(decode(encodeInt8(new Float32Array(0), { random: mulberry32(1) }))).toEqual(new Float32Array(0));
  });

  it('refuses non-finite input', () => {
    expect(codeOf(() => encodeInt8(Float32Array.of(1, NaN), { random: mulberry32(1) }))).toBe(
      'non-finite-input',
    );
  });
});

describe('topk with error feedback', () => {
  it('sends the k largest magnitudes, lowest index first on ties', () => {
    const fb = new ErrorFeedback(6);
    const bytes = encodeTopk(Float32Array.of(0.1, -5, 2, 2, 0, 3), 0.5, fb);
    expect(Array.from(decode(bytes))).toEqual([0, -5, 2, 0, 0, 3]);
    expect(Array.from(fb.residual)).toEqual([Math.fround(0.1), 0, 0, 2, 0, 0]);
  });

  it('nothing is dropped: sum of sent + residual equals sum of inputs over many rounds', () => {
    const n = 5000;
    const fb = new ErrorFeedback(n);
    const sent = new Float64Array(n);
    const inputs = new Float64Array(n);
    const mag = new Float64Array(n);
    for (let round = 0; round < 50; round++) {
      const x = data(n, 100 + round);
      const y = decode(encodeTopk(x, 0.01, fb));
      for (let i = 0; i < n; i++) {
        inputs[i]! += x[i]!;
        mag[i]! += Math.abs(x[i]!);
        sent[i]! += y[i]!;
      }
    }
    for (let i = 0; i < n; i++) {
      // Each round adds one fp32 rounding of the running residual: |error| <= 50 * 2^-24 * sum |x|.
      const err = Math.abs(sent[i]! + fb.residual[i]! - inputs[i]!);
      if (err > 50 * 2 ** -24 * (mag[i]! + 1)) expect.fail(`element ${i}: off by ${err}`);
    }
  });

  it('1% costs at most 0.03x of fp32 bytes (delta-varint indices)', () => {
    const n = 100_000;
    const bytes = encodeTopk(data(n, 5), 0.01, new ErrorFeedback(n));
    expect(topkCount(n, 0.01)).toBe(1000);
    expect(bytes.byteLength / (4 * n)).toBeLessThanOrEqual(0.02);
    expect(bytes.byteLength).toBeGreaterThanOrEqual(16 + 1000 * 5);
  });

  it('refuses a non-finite input and a feedback of the wrong size', () => {
    expect(codeOf(() => encodeTopk(Float32Array.of(Infinity), 1, new ErrorFeedback(1)))).toBe(
      'non-finite-input',
    );
    expect(codeOf(() => encodeTopk(Float32Array.of(1), 1, new ErrorFeedback(2)))).toBe('bad-state');
  });
});

describe('malformed payloads are refused by name and leave the output untouched', () => {
  const x = data(1000, 9);
  const payloads = {
    fp16: encodeFp16(x),
    int8: encodeInt8(x, { random: mulberry32(1) }),
    topk: encodeTopk(x, 0.05, new ErrorFeedback(x.length)),
  };

  /** A copy of `bytes` with `edit` applied through a DataView. */
  const edited = (bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array => {
    const copy = bytes.slice();
    edit(new DataView(copy.buffer));
    return copy;
  };

  const check = (bytes: Uint8Array, code: string, length = 1000): void => {
    const out = new Float32Array(length).fill(7);
    expect(codeOf(() => decodeInto(bytes, out, { add: true }))).toBe(code);
    expect(out.every((v) => v === 7)).toBe(true);
  };

  it('truncated, extended, wrong header, wrong length', () => {
    for (const bytes of Object.values(payloads)) {
      check(bytes.subarray(0, 5), 'truncated');
      check(bytes.subarray(0, bytes.byteLength - 1), 'truncated');
      check(Uint8Array.from([...bytes, 0]), 'bad-length');
      check(
        edited(bytes, (v) => v.setUint8(0, 0)),
        'bad-header',
      );
      check(
        edited(bytes, (v) => v.setUint8(1, 9)),
        'bad-header',
      );
      check(
        edited(bytes, (v) => v.setUint8(2, 2)),
        'bad-header',
      );
      check(bytes, 'bad-length', 999);
    }
    check(new Uint8Array(0), 'truncated');
    expect(codeOf(() => decodeInto(payloads.fp16, new Float32Array(1000), { codec: 'int8' }))).toBe(
      'bad-header',
    );
  });

  it('int8: NaN, negative or infinite scale, code -128, zero bucket size', () => {
    check(
      edited(payloads.int8, (v) => v.setFloat32(12, NaN, true)),
      'bad-value',
    );
    check(
      edited(payloads.int8, (v) => v.setFloat32(12, -1, true)),
      'bad-value',
    );
    check(
      edited(payloads.int8, (v) => v.setFloat32(16, Infinity, true)),
      'bad-value',
    );
    check(
      edited(payloads.int8, (v) => v.setInt8(payloads.int8.byteLength - 1, -128)),
      'bad-value',
    );
    check(
      edited(payloads.int8, (v) => v.setUint32(8, 0, true)),
      'bad-value',
    );
    check(
      edited(payloads.int8, (v) => v.setUint32(8, 100, true)),
      'truncated',
    ); // more scales than sent
    check(
      edited(payloads.int8, (v) => v.setUint32(8, 1000, true)),
      'bad-length',
    ); // fewer
  });

  it('topk: index out of range, repeated, malformed varint, NaN value, count too large', () => {
    const p = payloads.topk;
    const view = new DataView(p.buffer);
    const k = view.getUint32(8, true);
    const indexBytes = view.getUint32(12, true);
    check(
      edited(p, (v) => v.setUint32(8, 1001, true)),
      'bad-length',
    );
    check(
      edited(p, (v) => v.setUint32(12, indexBytes + 1, true)),
      'truncated',
    );
    check(
      edited(p, (v) => v.setFloat32(16 + indexBytes, NaN, true)),
      'bad-value',
    );
    // A gap of 0 after the first index repeats an index.
    const repeated = encodeTopk(Float32Array.of(1, 2, 3, 4), 1, new ErrorFeedback(4));
    check(
      edited(repeated, (v) => v.setUint8(17, 0)),
      'bad-index',
      4,
    );
    // First index 200 (two varint bytes would be needed; one byte 0x7f = 127 >= length 4).
    check(
      edited(repeated, (v) => v.setUint8(16, 0x7f)),
      'bad-index',
      4,
    );
    // A continuation bit on the last index byte runs into the values.
    check(
      edited(repeated, (v) => v.setUint8(19, 0x81)),
      'bad-index',
      4,
    );
    expect(k).toBe(50);
  });
});

describe('createCompressor / encodePayload', () => {
  it('dispatches to the codec; relativeError measures the loss', () => {
    const x = data(4096, 4);
    const fp16 = decode(encodePayload({ kind: 'fp16' }, x));
    const int8c = createCompressor({ kind: 'int8' }, { length: x.length, seed: 1 });
    if (int8c.kind !== 'int8') return expect.fail('int8 compressor expected');
    const int8 = decode(encodePayload(int8c, x));
    expect(relativeError(fp16, x)).toBeLessThan(5e-4);
    expect(relativeError(int8, x)).toBeLessThan(0.01);
    expect(relativeError(x, x)).toBe(0);
    expect(relativeError([0, 0], [0, 0])).toBe(0);
  });

  it('refuses PowerSGD shapes that do not cover the tensor', () => {
    expect(
      codeOf(() =>
        createCompressor({ kind: 'powersgd', rank: 2 }, { length: 10, seed: 1, shapes: [[3, 3]] }),
      ),
    ).toBe('bad-state');
  });
});
