import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.ts';
import { PROTOCOL_VERSION } from './version.ts';
import {
  DTYPES,
  FRAME_HEADER_BYTES,
  MIN_FRAME_BYTES,
  Reassembler,
  bytesPerElement,
  decodeFrame,
  encodeMessage,
} from './frame.ts';
import type { DType, TensorMessage, WireMessage } from './frame.ts';
import type { ControlMessage } from './messages.ts';

/** Deterministic bytes (xorshift32) so failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

function tensor(dtype: DType, shape: number[], seed = 1): TensorMessage {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    runId: 3,
    step: 41,
    microBatch: 2,
    tag: 7,
    dtype,
    shape,
    data: randomBytes(n * bytesPerElement(dtype), seed),
  };
}

function roundTrip(msg: WireMessage, maxFrameBytes: number): { frames: Uint8Array[]; out: WireMessage } {
  const frames = encodeMessage(msg, { maxFrameBytes, msgId: 9 });
  const r = new Reassembler();
  let out: WireMessage | null = null;
  frames.forEach((f, i) => {
    expect(f.byteLength).toBeLessThanOrEqual(maxFrameBytes);
    const got = r.push(decodeFrame(f));
    if (i < frames.length - 1) expect(got).toBeNull();
    else out = got;
  });
  expect(r.partialCount).toBe(0);
  expect(r.partialBytes).toBe(0);
  if (out === null) throw new Error('message not completed');
  return { frames, out };
}

function expectProtocolError(fn: () => unknown, code?: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    if (code !== undefined) expect((err as ProtocolError).code).toBe(code);
    return;
  }
  throw new Error('expected a ProtocolError');
}

const CHUNK = 4096;

describe('frame round trips', () => {
  for (const dtype of DTYPES) {
    const bpe = bytesPerElement(dtype);
    const payloadPerChunk = Math.floor((CHUNK - FRAME_HEADER_BYTES - 4) / 8) * 8;
    const atChunk = Math.floor(payloadPerChunk / bpe);
    const counts = [0, 1, 7, atChunk - 1, atChunk, atChunk + 1, 3 * atChunk + 5];
    for (const n of counts) {
      it(`${dtype} x ${n}`, () => {
        const t = tensor(dtype, [n], n + 17);
        const { frames, out } = roundTrip({ kind: 'tensor', tensor: t }, CHUNK);
        expect(frames.length).toBe(n === 0 ? 1 : Math.ceil((n * bpe) / payloadPerChunk));
        expect(out).toEqual({ kind: 'tensor', tensor: t });
        if (out.kind !== 'tensor') throw new Error('kind');
        expect(out.tensor.data.byteOffset % 4).toBe(0);
      });
    }
  }

  it('several MB of float32 in 64 KiB frames, rank 3, viewable as Float32Array', () => {
    const t = tensor('float32', [5, 300, 1001], 99); // [5, 300, 1001] = 6 MB
    const { frames, out } = roundTrip({ kind: 'tensor', tensor: t }, 65536);
    expect(frames.length).toBeGreaterThan(90);
    if (out.kind !== 'tensor') throw new Error('kind');
    expect(out.tensor.shape).toEqual([5, 300, 1001]);
    expect(Buffer.from(out.tensor.data).equals(Buffer.from(t.data))).toBe(true);
    const f = new Float32Array(out.tensor.data.buffer, out.tensor.data.byteOffset, 5 * 300 * 1001);
    expect(f.length).toBe(1_501_500);
  });

  it('rank 0 scalar and rank 8, microBatch null', () => {
    const scalar: TensorMessage = { ...tensor('int32', []), microBatch: null };
    expect(roundTrip({ kind: 'tensor', tensor: scalar }, MIN_FRAME_BYTES).out).toEqual({
      kind: 'tensor',
      tensor: scalar,
    });
    const r8 = tensor('int8', [1, 2, 1, 3, 1, 2, 1, 5]);
    expect(roundTrip({ kind: 'tensor', tensor: r8 }, MIN_FRAME_BYTES).out).toEqual({
      kind: 'tensor',
      tensor: r8,
    });
  });

  it('single-chunk messages are not copied on arrival', () => {
    const t = tensor('float32', [100]);
    const [frame] = encodeMessage({ kind: 'tensor', tensor: t }, { maxFrameBytes: 65536, msgId: 1 });
    if (!frame) throw new Error('no frame');
    const out = new Reassembler().push(decodeFrame(frame));
    if (out?.kind !== 'tensor') throw new Error('kind');
    expect(out.tensor.data.buffer).toBe(frame.buffer);
  });

  it('copies a single-chunk payload that is misaligned', () => {
    const t = tensor('float32', [3]);
    const [frame] = encodeMessage({ kind: 'tensor', tensor: t }, { maxFrameBytes: 65536, msgId: 1 });
    if (!frame) throw new Error('no frame');
    const shifted = new Uint8Array(frame.byteLength + 1).subarray(1);
    shifted.set(frame);
    const out = new Reassembler().push(decodeFrame(shifted));
    if (out?.kind !== 'tensor') throw new Error('kind');
    expect(out.tensor.data.byteOffset % 4).toBe(0);
    expect(out.tensor.data).toEqual(t.data);
  });

  it('control messages, small and chunked', () => {
    const ping: ControlMessage = { type: 'ping', id: 4, t0: 123.5 };
    expect(roundTrip({ kind: 'control', control: ping }, 4096).out).toEqual({
      kind: 'control',
      control: ping,
    });
    const leave: ControlMessage = { type: 'leave', reason: 'x'.repeat(10_000) + ' ünïcødé ✓' };
    const { frames, out } = roundTrip({ kind: 'control', control: leave }, 1024);
    expect(frames.length).toBeGreaterThan(9);
    expect(out).toEqual({ kind: 'control', control: leave });
  });

  it('interleaved chunks of two messages reassemble independently', () => {
    const a = tensor('float32', [3000], 1);
    const b = tensor('uint8', [5000], 2);
    const fa = encodeMessage({ kind: 'tensor', tensor: a }, { maxFrameBytes: 1024, msgId: 1 });
    const fb = encodeMessage({ kind: 'tensor', tensor: b }, { maxFrameBytes: 1024, msgId: 2 });
    const r = new Reassembler();
    const done: WireMessage[] = [];
    for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
      for (const f of [fa[i], fb[i]]) {
        if (!f) continue;
        const m = r.push(decodeFrame(f));
        if (m) done.push(m);
      }
    }
    expect(done).toEqual([
      { kind: 'tensor', tensor: b },
      { kind: 'tensor', tensor: a },
    ]);
  });

  it('rejects invalid tensors and frame sizes on encode', () => {
    const bad = { ...tensor('float32', [4]), shape: [5] };
    expectProtocolError(() =>
      encodeMessage({ kind: 'tensor', tensor: bad }, { maxFrameBytes: 4096, msgId: 1 }),
    );
    const neg = { ...tensor('float32', [4]), step: -1 };
    expectProtocolError(() =>
      encodeMessage({ kind: 'tensor', tensor: neg }, { maxFrameBytes: 4096, msgId: 1 }),
    );
    expect(() =>
      encodeMessage({ kind: 'tensor', tensor: tensor('uint8', [1]) }, { maxFrameBytes: 50, msgId: 1 }),
    ).toThrow(RangeError);
  });
});

describe('corrupt frames', () => {
  const t = tensor('float32', [1000], 5);
  const frames = encodeMessage({ kind: 'tensor', tensor: t }, { maxFrameBytes: 1024, msgId: 77 });
  const first = frames[0] ?? new Uint8Array();
  const withU32 = (f: Uint8Array, at: number, value: number): Uint8Array => {
    const c = f.slice();
    new DataView(c.buffer).setUint32(at, value, true);
    return c;
  };
  const withU8 = (f: Uint8Array, at: number, value: number): Uint8Array => {
    const c = f.slice();
    c[at] = value;
    return c;
  };

  it('truncated', () => {
    expectProtocolError(() => decodeFrame(first.subarray(0, 10)), 'bad-length');
    expectProtocolError(() => decodeFrame(first.subarray(0, FRAME_HEADER_BYTES + 2)), 'bad-length');
    expectProtocolError(() => decodeFrame(first.subarray(0, first.byteLength - 1)), 'bad-length');
    const last = frames[frames.length - 1] ?? new Uint8Array();
    expectProtocolError(() => decodeFrame(last.subarray(0, last.byteLength - 4)), 'bad-length');
  });

  it('wrong magic, version, kind, dtype, rank', () => {
    expectProtocolError(() => decodeFrame(withU8(first, 0, 0x51)), 'bad-magic');
    expectProtocolError(() => decodeFrame(withU8(first, 2, 99)), 'bad-version');
    expectProtocolError(() => decodeFrame(withU8(first, 3, 3)), 'bad-kind');
    expectProtocolError(() => decodeFrame(withU8(first, 4, 0)), 'bad-dtype');
    expectProtocolError(() => decodeFrame(withU8(first, 4, 6)), 'bad-dtype');
    expectProtocolError(() => decodeFrame(withU8(first, 5, 9)), 'bad-shape');
    expectProtocolError(() => decodeFrame(withU8(first, 4, 2 + 1)), 'bad-shape'); // uint8 x 1000 != 4000 bytes
    expectProtocolError(() => decodeFrame(withU8(first, 3, 1)), 'bad-dtype'); // control of float32
    expectProtocolError(() => decodeFrame(withU8(withU8(first, 3, 1), 4, 3)), 'bad-shape'); // control, rank 1
  });

  it('flipped length and chunk fields', () => {
    expectProtocolError(() => decodeFrame(withU32(first, 20, 4001)), 'bad-shape'); // totalBytes
    expectProtocolError(() => decodeFrame(withU32(first, FRAME_HEADER_BYTES, 1001)), 'bad-shape'); // dim
    expectProtocolError(() => decodeFrame(withU32(first, 24, 8)), 'bad-chunk'); // first chunk offset
    expectProtocolError(() => decodeFrame(withU32(first, 12, 99)), 'bad-chunk'); // index >= count
    expectProtocolError(() => decodeFrame(withU32(first, 16, 0)), 'bad-chunk'); // count 0
    expectProtocolError(() => decodeFrame(withU32(first, 16, 5000)), 'bad-chunk'); // count > bytes
    const second = frames[1] ?? new Uint8Array();
    expectProtocolError(() => decodeFrame(withU32(second, 24, 3990)), 'bad-length'); // overruns
    expectProtocolError(() => decodeFrame(withU32(second, 24, 1004)), 'bad-length'); // misaligned offset
  });

  it('a middle chunk cut short by a multiple of 8 is refused by the reassembler', () => {
    const r = new Reassembler();
    const [f0, f1] = frames;
    if (!f0 || !f1) throw new Error('frames');
    r.push(decodeFrame(f0));
    expectProtocolError(() => r.push(decodeFrame(f1.subarray(0, f1.byteLength - 8))), 'bad-chunk');
    // A first chunk cut short looks like smaller chunking: the next chunk's offset gives it away.
    r.push(decodeFrame(f0.subarray(0, f0.byteLength - 8)));
    expectProtocolError(() => r.push(decodeFrame(f1)), 'bad-chunk');
    // A first chunk whose length does not match the announced chunk count.
    expectProtocolError(() => r.push(decodeFrame(withU32(f0, 16, 6))), 'bad-chunk');
    expect(r.partialCount).toBe(0);
  });

  it('reassembler refuses inconsistent chunk sequences and recovers', () => {
    const r = new Reassembler();
    const [f0, f1, f2] = frames.map((f) => decodeFrame(f));
    if (!f0 || !f1 || !f2) throw new Error('frames');
    expectProtocolError(() => r.push(f1), 'bad-chunk'); // unknown message
    r.push(f0);
    expectProtocolError(() => r.push(f2), 'bad-chunk'); // skipped a chunk: message dropped
    expect(r.partialCount).toBe(0);
    expectProtocolError(() => r.push(f1), 'bad-chunk'); // its later chunks are refused too
    r.push(f0);
    expectProtocolError(() => r.push(decodeFrame(withU32(frames[1] ?? first, 32, 42))), 'bad-chunk'); // step differs
    r.push(f0);
    expectProtocolError(() => r.push(f0), 'bad-chunk'); // restarted
    // A clean copy still goes through afterwards.
    let out: WireMessage | null = null;
    for (const f of frames) out = r.push(decodeFrame(f));
    expect(out).toEqual({ kind: 'tensor', tensor: t });
  });

  it('reassembler caps partial messages and bytes', () => {
    const r = new Reassembler({ maxPartialMessages: 2, maxPartialBytes: 10_000 });
    const start = (msgId: number, n: number) =>
      decodeFrame(
        encodeMessage({ kind: 'tensor', tensor: tensor('uint8', [n]) }, { maxFrameBytes: 1024, msgId })[0] ??
          new Uint8Array(),
      );
    r.push(start(1, 4000));
    r.push(start(2, 4000));
    expectProtocolError(() => r.push(start(3, 2000)), 'bad-chunk');
    r.clear();
    r.push(start(1, 6000));
    expectProtocolError(() => r.push(start(2, 6000)), 'bad-length');
    expectProtocolError(() => r.push(start(4, 20_000)), 'bad-length'); // over maxMessageBytes
    expect(r.partialBytes).toBe(6000);
  });

  it('control payloads that are not JSON or not a control message', () => {
    const make = (payload: Uint8Array): Uint8Array => {
      const f = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
      const v = new DataView(f.buffer);
      v.setUint16(0, 0x5450, true);
      v.setUint8(2, PROTOCOL_VERSION);
      v.setUint8(3, 1);
      v.setUint8(4, 3);
      v.setUint32(16, 1, true);
      v.setUint32(20, payload.byteLength, true);
      f.set(payload, FRAME_HEADER_BYTES);
      return f;
    };
    const enc = new TextEncoder();
    expectProtocolError(() => new Reassembler().push(decodeFrame(make(enc.encode('{"type":')))), 'bad-json');
    expectProtocolError(
      () => new Reassembler().push(decodeFrame(make(new Uint8Array([0xff, 0xfe])))),
      'bad-json',
    );
    expectProtocolError(
      () => new Reassembler().push(decodeFrame(make(enc.encode('{"type":"nope"}')))),
      'bad-message',
    );
    expect(new Reassembler().push(decodeFrame(make(enc.encode('{"type":"leave","reason":"r"}'))))).toEqual({
      kind: 'control',
      control: { type: 'leave', reason: 'r' },
    });
  });

  it('fuzz: random bytes and mutated frames only ever raise ProtocolError', () => {
    const next = prng(12345);
    const r = new Reassembler({ maxPartialBytes: 1 << 20 });
    const ctrl = encodeMessage(
      { kind: 'control', control: { type: 'ping', id: 1, t0: 2 } },
      { maxFrameBytes: 1024, msgId: 5 },
    );
    const seeds = [...frames, ...ctrl];
    let refused = 0;
    for (let i = 0; i < 4000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = randomBytes(next() % 200, next());
        if (i % 4 === 0 && bytes.byteLength >= 4) {
          bytes[0] = 0x50; // right magic and version, so the deeper checks run
          bytes[1] = 0x54;
          bytes[2] = PROTOCOL_VERSION;
        }
      } else {
        const base = seeds[next() % seeds.length] ?? first;
        bytes = base.slice(0, next() % 8 === 0 ? next() % (base.byteLength + 1) : base.byteLength);
        const flips = 1 + (next() % 4);
        for (let k = 0; k < flips && bytes.byteLength > 0; k++)
          bytes[next() % bytes.byteLength] = next() & 0xff;
      }
      try {
        r.push(decodeFrame(bytes));
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(3000);
    expect(r.partialBytes).toBeLessThanOrEqual(1 << 20);
  });
});
