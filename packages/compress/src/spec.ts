import { ConfigError } from '@peertrain/protocol';

/** What `--compress` names: how every exchanged tensor is compressed. */
export type CompressionSpec =
  | { kind: 'none' }
  | { kind: 'fp16' }
  | { kind: 'int8' }
  | { kind: 'topk'; fraction: number }
  | { kind: 'powersgd'; rank: number };

export type CompressionKind = CompressionSpec['kind'];

const USAGE = 'expected none, fp16, int8, topk:FRACTION (0 < FRACTION <= 1) or powersgd:RANK (integer >= 1)';

/** Parses 'none' | 'fp16' | 'int8' | 'topk:0.01' | 'powersgd:4'; ConfigError for anything else. */
export function parseCompression(text: string): CompressionSpec {
  const [name, arg, ...rest] = text.trim().split(':');
  const bad = (): ConfigError => new ConfigError('invalid compression', [`"${text}": ${USAGE}`]);
  if (rest.length > 0) throw bad();
  switch (name) {
    case 'none':
    case 'fp16':
    case 'int8':
      if (arg !== undefined) throw bad();
      return { kind: name };
    case 'topk': {
      const fraction = arg !== undefined && /^[0-9.eE+-]+$/.test(arg) ? Number(arg) : NaN;
      if (!(fraction > 0 && fraction <= 1)) throw bad();
      return { kind: 'topk', fraction };
    }
    case 'powersgd': {
      const rank = arg !== undefined && /^[0-9]+$/.test(arg) ? Number(arg) : NaN;
      if (!(Number.isSafeInteger(rank) && rank >= 1)) throw bad();
      return { kind: 'powersgd', rank };
    }
    default:
      throw bad();
  }
}

/** The text parseCompression reads back to the same spec. */
export function formatCompression(spec: CompressionSpec): string {
  switch (spec.kind) {
    case 'none':
    case 'fp16':
    case 'int8':
      return spec.kind;
    case 'topk':
      return `topk:${spec.fraction}`;
    case 'powersgd':
      return `powersgd:${spec.rank}`;
    default: {
      const unknown: never = spec;
      throw new ConfigError('unknown compression', [JSON.stringify(unknown)]);
    }
  }
}
