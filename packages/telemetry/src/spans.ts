import { ConfigError } from '@peertrain/protocol';
import type { Lane, SpanKind } from '@peertrain/protocol';

// Spans: what each worker did and when, on its own clock. The coordinator shifts them onto one time
// axis with each peer's clock offset (clock.ts) and draws or exports them (trace.ts).

export interface Span {
  peerId: string;
  kind: SpanKind;
  /** Start on the recording peer's clock, ms. */
  startMs: number;
  durMs: number;
  step: number;
  microBatch?: number;
  /** Interleaved pipelines: which of the peer's model chunks the op ran (0 = its first). */
  chunk?: number;
  /** Payload bytes moved (send, recv, allreduce). */
  bytes?: number;
  lane: Lane;
  /** The peer on the other end of a send / recv. */
  peer?: string;
}

/** What the caller says about a span; `lane` defaults from the kind (laneOf). */
export interface SpanMeta {
  step: number;
  microBatch?: number;
  chunk?: number;
  bytes?: number;
  lane?: Lane;
  peer?: string;
}

/** Default lane of a kind: moving bytes or waiting for them is communication, the rest computation. */
export function laneOf(kind: SpanKind): Lane {
  switch (kind) {
    case 'send':
    case 'recv':
    case 'wait':
    case 'allreduce':
    case 'reduceScatter':
    case 'allGather':
    case 'recovery':
      return 'comm';
    case 'forward':
    case 'backward':
    case 'optimizer':
    case 'compute':
    case 'eval':
      return 'compute';
    default: {
      const unknownKind: never = kind;
      throw new ConfigError('invalid span', [`unknown span kind ${String(unknownKind)}`]);
    }
  }
}

export interface SpanRecorderOptions {
  peerId: string;
  /** The peer's clock in ms (performance.now in a tab; a fake in tests). */
  now: () => number;
  /** Spans kept until drained; the oldest are overwritten beyond this (default 4096). */
  capacity?: number;
}

/**
 * Records spans into a bounded ring buffer: a tab that is never drained keeps the latest
 * `capacity` spans and counts the ones it dropped.
 */
export class SpanRecorder {
  readonly peerId: string;
  readonly capacity: number;
  readonly #now: () => number;
  readonly #buffer: (Span | undefined)[];
  /** Index of the oldest span. */
  #head = 0;
  #size = 0;
  #dropped = 0;

  constructor(opts: SpanRecorderOptions) {
    const capacity = opts.capacity ?? 4096;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new ConfigError('invalid span recorder', [
        `capacity must be a positive integer, got ${capacity}`,
      ]);
    }
    this.peerId = opts.peerId;
    this.capacity = capacity;
    this.#now = opts.now;
    this.#buffer = new Array<Span | undefined>(capacity).fill(undefined);
  }

  /** Spans held now. */
  get size(): number {
    return this.#size;
  }

  /** Spans overwritten before they were drained, since the recorder was made. */
  get dropped(): number {
    return this.#dropped;
  }

  now(): number {
    return this.#now();
  }

  /** Adds a finished span and returns it. */
  record(kind: SpanKind, startMs: number, durMs: number, meta: SpanMeta): Span {
    const span: Span = {
      peerId: this.peerId,
      kind,
      startMs,
      durMs: Math.max(0, durMs),
      step: meta.step,
      lane: meta.lane ?? laneOf(kind),
    };
    if (meta.microBatch !== undefined) span.microBatch = meta.microBatch;
    if (meta.chunk !== undefined) span.chunk = meta.chunk;
    if (meta.bytes !== undefined) span.bytes = meta.bytes;
    if (meta.peer !== undefined) span.peer = meta.peer;
    const tail = (this.#head + this.#size) % this.capacity;
    this.#buffer[tail] = span;
    if (this.#size < this.capacity) {
      this.#size++;
    } else {
      this.#head = (this.#head + 1) % this.capacity;
      this.#dropped++;
    }
    return span;
  }

  /** Starts a span now; the returned function ends and records it (with `bytes` known only at the end). */
  begin(kind: SpanKind, meta: SpanMeta): (end?: { bytes?: number }) => Span {
    const start = this.#now();
    return (end = {}) => this.record(kind, start, this.#now() - start, { ...meta, ...end });
  }

  /**
   * Runs `fn` inside a span of `kind`. `fn` gets the span's meta and may set `bytes` on it. The span
   * is recorded whether `fn` resolves or throws; the result or error passes through unchanged.
   */
  async span<T>(kind: SpanKind, meta: SpanMeta, fn: (meta: SpanMeta) => Promise<T> | T): Promise<T> {
    const own: SpanMeta = { ...meta };
    const start = this.#now();
    try {
      return await fn(own);
    } finally {
      this.record(kind, start, this.#now() - start, own);
    }
  }

  /** The spans held, oldest first, without removing them. */
  snapshot(): Span[] {
    const out: Span[] = [];
    for (let i = 0; i < this.#size; i++) {
      const span = this.#buffer[(this.#head + i) % this.capacity];
      if (span !== undefined) out.push(span);
    }
    return out;
  }

  /** Removes and returns the spans held, oldest first. */
  drain(): Span[] {
    const out = this.snapshot();
    this.#buffer.fill(undefined);
    this.#head = 0;
    this.#size = 0;
    return out;
  }
}
