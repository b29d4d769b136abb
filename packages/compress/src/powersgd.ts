import { mulberry32 } from '@peertrain/base';

import { CompressionError } from './errors.ts';

// PowerSGD (Vogels et al. 2019), rank r, one power iteration per step with warm start, and error
// feedback. For each weight matrix M [rows, cols] (a tensor of shape [..., cols] is seen as
// [prod(leading dims), cols]) every worker w does:
//   A_w = M_w + E_w                     (error feedback: add what was not transmitted before)
//   P_w = A_w Q           [rows, r]     -> all-reduce (sum) -> P = sum_w P_w, orthonormalized
//   Q_w = A_w^T P         [cols, r]     -> all-reduce (sum) -> Q = sum_w Q_w
//   out = P Q^T           [rows, cols]  = P P^T sum_w A_w, the rank-r approximation of the SUM
//   E_w = A_w - P Q_w^T                  (what this worker's contribution lost)
// and Q is kept as the next step's starting Q (warm start). Every worker must start from the same Q,
// so the seed must be the same on every worker. Both all-reduces are linear (plain float32 sums),
// so any all-reduce drives it: computeP -> (all-reduce) -> setReducedP -> computeQ -> (all-reduce)
// -> setReducedQ. Tensors that do not gain (1-D biases, rank >= min(rows, cols), or
// r (rows + cols) >= rows * cols) ride uncompressed in the first all-reduce, after the P factors.
// Arithmetic: float64 accumulation, rounded to float32 once per stored element; from identical
// reduced P and Q every worker computes identical bits.

interface Matrix {
  offset: number; // in the flat tensor
  rows: number;
  cols: number;
  p: number; // offset of its P factor in the P buffer
  q: number; // offset of its Q factor in the Q buffer / warm-start state
  e: number; // offset of its residual and accumulator
}

interface Raw {
  offset: number;
  size: number;
  at: number; // offset in the P buffer (after every P factor)
}

type Stage = 'idle' | 'p-sent' | 'p-set' | 'q-sent';

export interface PowerSgdOptions {
  /** Shapes of the tensors laid out back to back in the flat vector, in order. */
  shapes: readonly (readonly number[])[];
  rank: number;
  /** Seed of the initial Q: the SAME on every worker (e.g. the run id). */
  seed: number;
}

export class PowerSgd {
  readonly length: number;
  readonly rank: number;
  /** Elements of the first all-reduce: every P factor, then every uncompressed tensor. */
  readonly pLength: number;
  /** Elements of the second all-reduce: every Q factor. */
  readonly qLength: number;
  readonly #matrices: Matrix[] = [];
  readonly #raw: Raw[] = [];
  readonly #q: Float32Array; // [qLength] warm-start Q (the last reduced Q)
  readonly #residual: Float32Array; // [matrix elems] error feedback E
  readonly #acc: Float32Array; // [matrix elems] A = M + E of the current step
  #p = new Float32Array(0); // [pLength] reduced P (orthonormalized) and raw sums
  #qLocal = new Float32Array(0); // [qLength] this worker's Q_w
  #stage: Stage = 'idle';

  constructor(opts: PowerSgdOptions) {
    const r = opts.rank;
    if (!Number.isInteger(r) || r < 1)
      throw new CompressionError('bad-state', `PowerSGD rank must be >= 1, got ${r}`);
    this.rank = r;
    let offset = 0;
    let pLen = 0;
    let qLen = 0;
    let eLen = 0;
    const raws: Omit<Raw, 'at'>[] = [];
    for (const shape of opts.shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      if (!Number.isInteger(size) || size < 0)
        throw new CompressionError('bad-state', `bad shape [${shape.join(', ')}]`);
      const cols = shape.length >= 2 ? shape[shape.length - 1]! : size;
      const rows = shape.length >= 2 ? size / cols : 1;
      if (shape.length >= 2 && r < Math.min(rows, cols) && r * (rows + cols) < size) {
        this.#matrices.push({ offset, rows, cols, p: pLen, q: qLen, e: eLen });
        pLen += rows * r;
        qLen += cols * r;
        eLen += size;
      } else {
        raws.push({ offset, size });
      }
      offset += size;
    }
    for (const raw of raws) {
      this.#raw.push({ ...raw, at: pLen });
      pLen += raw.size;
    }
    this.length = offset;
    this.pLength = pLen;
    this.qLength = qLen;
    this.#residual = new Float32Array(eLen);
    this.#acc = new Float32Array(eLen);
    const random = mulberry32(opts.seed);
    this.#q = Float32Array.from({ length: qLen }, () => random() * 2 - 1);
  }

  /** Tensors compressed (as [rows, cols]) and elements sent uncompressed. */
  get layout(): { matrices: { rows: number; cols: number }[]; rawElems: number } {
    return {
      matrices: this.#matrices.map(({ rows, cols }) => ({ rows, cols })),
      rawElems: this.#raw.reduce((s, r) => s + r.size, 0),
    };
  }

  /** Step 1: A = grad + E; returns a fresh [pLength] buffer (P factors, raw tensors) to sum. */
  computeP(grad: Float32Array): Float32Array {
    this.#expect('idle', 'computeP');
    this.#expectLength('grad', grad.length, this.length);
    const out = new Float32Array(this.pLength);
    for (const m of this.#matrices) {
      for (let i = 0; i < m.rows * m.cols; i++) {
        const a = grad[m.offset + i]! + this.#residual[m.e + i]!;
        if (!Number.isFinite(a)) throw new CompressionError('non-finite-input', `element ${m.offset + i}`);
        this.#acc[m.e + i] = a;
      }
      matMul(this.#acc, m.e, m.rows, m.cols, this.#q, m.q, this.rank, out, m.p);
    }
    for (const raw of this.#raw) out.set(grad.subarray(raw.offset, raw.offset + raw.size), raw.at);
    this.#stage = 'p-sent';
    return out;
  }

  /** Step 2: the all-reduced (summed) P buffer; orthonormalizes each P factor (a copy is kept). */
  setReducedP(sum: Float32Array): void {
    this.#expect('p-sent', 'setReducedP');
    this.#expectLength('reduced P', sum.length, this.pLength);
    this.#p = sum.slice();
    for (const m of this.#matrices) orthonormalize(this.#p, m.p, m.rows, this.rank);
    this.#stage = 'p-set';
  }

  /** Step 3: returns a fresh [qLength] buffer Q_w = A^T P to sum. */
  computeQ(): Float32Array {
    this.#expect('p-set', 'computeQ');
    const out = new Float32Array(this.qLength);
    for (const m of this.#matrices)
      matTMul(this.#acc, m.e, m.rows, m.cols, this.#p, m.p, this.rank, out, m.q);
    this.#qLocal = out.slice();
    this.#stage = 'q-sent';
    return out;
  }

  /**
   * Step 4: the all-reduced Q buffer; writes the approximate SUM over workers into `out` [length]
   * (P Q^T for matrices, exact sums for raw tensors), updates E and keeps Q for the next step.
   */
  setReducedQ(sum: Float32Array, out: Float32Array): void {
    this.#expect('q-sent', 'setReducedQ');
    this.#expectLength('reduced Q', sum.length, this.qLength);
    this.#expectLength('out', out.length, this.length);
    const r = this.rank;
    const p = this.#p;
    for (const m of this.#matrices) {
      for (let i = 0; i < m.rows; i++) {
        for (let c = 0; c < m.cols; c++) {
          let approx = 0;
          let local = 0;
          for (let j = 0; j < r; j++) {
            const pij = p[m.p + i * r + j]!;
            approx += pij * sum[m.q + c * r + j]!;
            local += pij * this.#qLocal[m.q + c * r + j]!;
          }
          const k = i * m.cols + c;
          out[m.offset + k] = approx;
          this.#residual[m.e + k] = this.#acc[m.e + k]! - local;
        }
      }
    }
    for (const raw of this.#raw) out.set(p.subarray(raw.at, raw.at + raw.size), raw.offset);
    this.#q.set(sum);
    this.#stage = 'idle';
  }

  /** Abandons a step in progress (e.g. the all-reduce failed): E and Q stay as before the step. */
  reset(): void {
    this.#stage = 'idle';
  }

  /** Copies of [Q, E] (the state to checkpoint), as plain Float32Arrays. */
  state(): Float32Array[] {
    return [this.#q.slice(), this.#residual.slice()];
  }

  #expect(stage: Stage, call: string): void {
    if (this.#stage !== stage)
      throw new CompressionError('bad-state', `${call} called in stage ${this.#stage}`);
  }

  #expectLength(what: string, got: number, want: number): void {
    if (got !== want)
      throw new CompressionError('bad-state', `${what} has ${got} elements, expected ${want}`);
  }
}

/** out[o + i*r + j] = sum_c a[ao + i*cols + c] * q[qo + c*r + j]: [rows, cols] x [cols, r]. */
function matMul(
  a: Float32Array,
  ao: number,
  rows: number,
  cols: number,
  q: Float32Array,
  qo: number,
  r: number,
  out: Float32Array,
  o: number,
): void {
  const row = new Float64Array(r);
  for (let i = 0; i < rows; i++) {
    row.fill(0);
    for (let c = 0; c < cols; c++) {
      const v = a[ao + i * cols + c]!;
      for (let j = 0; j < r; j++) row[j]! += v * q[qo + c * r + j]!;
    }
    for (let j = 0; j < r; j++) out[o + i * r + j] = row[j]!;
  }
}

/** out[o + c*r + j] = sum_i a[ao + i*cols + c] * p[po + i*r + j]: [rows, cols]^T x [rows, r]. */
function matTMul(
  a: Float32Array,
  ao: number,
  rows: number,
  cols: number,
  p: Float32Array,
  po: number,
  r: number,
  out: Float32Array,
  o: number,
): void {
  const acc = new Float64Array(cols * r);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      const v = a[ao + i * cols + c]!;
      for (let j = 0; j < r; j++) acc[c * r + j]! += v * p[po + i * r + j]!;
    }
  }
  for (let k = 0; k < cols * r; k++) out[o + k] = acc[k]!;
}

/**
 * Gram-Schmidt on the r columns of p[o ...] ([rows, r] row-major), each projected twice ("twice is
 * enough": one pass leaves the rounding noise of a nearly dependent column far from orthogonal). A
 * column that loses all but 1e-5 of its norm (the reduced P has rank < r) is set to 0, not normalized
 * noise.
 */
function orthonormalize(p: Float32Array, o: number, rows: number, r: number): void {
  const norm = (j: number): number => {
    let s = 0;
    for (let i = 0; i < rows; i++) s += p[o + i * r + j]! * p[o + i * r + j]!;
    return Math.sqrt(s);
  };
  for (let j = 0; j < r; j++) {
    const before = norm(j);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += p[o + i * r + j]! * p[o + i * r + k]!;
        for (let i = 0; i < rows; i++) p[o + i * r + j] = p[o + i * r + j]! - dot * p[o + i * r + k]!;
      }
    }
    const after = norm(j);
    const keep = after > 1e-5 * before && after > 1e-30;
    for (let i = 0; i < rows; i++) p[o + i * r + j] = keep ? p[o + i * r + j]! / after : 0;
  }
}
