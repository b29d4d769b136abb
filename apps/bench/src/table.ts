// Markdown table formatting (pure; tested in table.test.ts).

export type Align = 'left' | 'right';

/** A GitHub-flavoured markdown table; `|` inside cells is escaped, columns are padded to line up. */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string {
  const long = rows.findIndex((r) => r.length > headers.length);
  if (long >= 0)
    throw new RangeError(`row ${long} has ${rows[long]?.length} cells for ${headers.length} columns`);
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const cells = [headers.map(esc), ...rows.map((r) => headers.map((_, i) => esc(r[i] ?? '')))];
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  const pad = (s: string, i: number): string => {
    const w = widths[i] ?? 3;
    return align[i] === 'right' ? s.padStart(w) : s.padEnd(w);
  };
  const line = (r: readonly string[]): string => `| ${r.map(pad).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (align[i] === 'right' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), rule, ...body.map(line)].join('\n');
}

/** Fixed decimals; '-' for NaN, undefined or infinite values. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

/** A ratio as "0.85x". */
export function fmtRatio(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`;
}

/** A fraction as a whole percentage, "73%". */
export function fmtPercent(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${Math.round(x * 100)}%`;
}

/** Bytes with a binary unit: 512 B, 64 KiB, 8 MiB, 1.5 GiB. */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)} ${units[u] ?? 'B'}`;
}

/** Element counts as 64K, 256K, 1M, 4M (binary multiples), else the plain number. */
export function fmtElems(n: number): string {
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}
