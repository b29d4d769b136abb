import { ConfigError } from '@peertrain/protocol';

/**
 * An impaired link between the peers (`--link rate=20mbit,loss=2%,delay=40ms`, any subset). Applied
 * to UDP only (the peers' WebRTC traffic), in each direction: a round trip gains 2 x delayMs and each
 * datagram is lost with probability lossPercent / 100 on each crossing.
 */
export interface LinkSpec {
  /** Shaped rate in bit/s (tc's units: 1mbit = 1 000 000 bit/s). */
  rateBitsPerSecond?: number;
  /** Random loss per datagram, in percent (0 <= loss < 100; steps of 0.01). */
  lossPercent?: number;
  /** Added one-way delay in milliseconds (0 < delay <= 10 000). */
  delayMs?: number;
}

export const LINK_SPEC_RULE = 'KEY=VALUE,... with rate=<n>[bit|kbit|mbit|gbit], loss=<n>%, delay=<n>[ms|s]';

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const DELAY_UNITS: Record<string, number> = { ms: 1, s: 1000 };
/** tc rates below this are meaningless for a data channel; above, nothing here could fill them. */
const MIN_RATE = 8_000;
const MAX_RATE = 100e9;
const MAX_DELAY_MS = 10_000;

function parseRate(value: string, issues: string[]): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i.exec(value);
  const rate = m ? Number(m[1]) * RATE_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!(rate >= MIN_RATE && rate <= MAX_RATE)) {
    issues.push(`rate=${value}: expected 8kbit..100gbit, e.g. rate=20mbit`);
    return undefined;
  }
  return Math.round(rate);
}

function parseLoss(value: string, issues: string[]): number | undefined {
  const m = /^(\d+(?:\.\d{1,2})?)%$/.exec(value);
  const loss = m ? Number(m[1]) : NaN;
  if (!(loss >= 0 && loss < 100)) {
    issues.push(`loss=${value}: expected a percentage 0 <= n < 100 with at most 2 decimals, e.g. loss=2%`);
    return undefined;
  }
  return loss;
}

function parseDelay(value: string, issues: string[]): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/i.exec(value);
  const delay = m ? Number(m[1]) * DELAY_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!(delay > 0 && delay <= MAX_DELAY_MS)) {
    issues.push(`delay=${value}: expected 0 < delay <= 10s, e.g. delay=40ms`);
    return undefined;
  }
  return delay;
}

/**
 * `rate=20mbit,loss=2%,delay=40ms` (any non-empty subset, each key once, spaces around parts allowed)
 * -> LinkSpec. Throws ConfigError listing every bad part.
 */
export function parseLinkSpec(text: string): LinkSpec {
  const issues: string[] = [];
  const spec: LinkSpec = {};
  const seen = new Set<string>();
  const parts = text.split(',').map((p) => p.trim());
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq).trim().toLowerCase();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (eq < 0 || value === '') {
      issues.push(`${JSON.stringify(part)}: expected KEY=VALUE`);
      continue;
    }
    if (seen.has(key)) {
      issues.push(`${key}: given twice`);
      continue;
    }
    seen.add(key);
    if (key === 'rate') assign(spec, 'rateBitsPerSecond', parseRate(value, issues));
    else if (key === 'loss') assign(spec, 'lossPercent', parseLoss(value, issues));
    else if (key === 'delay') assign(spec, 'delayMs', parseDelay(value, issues));
    else issues.push(`${key}: unknown key (rate, loss, delay)`);
  }
  if (issues.length > 0)
    throw new ConfigError(`invalid --link ${JSON.stringify(text)} (${LINK_SPEC_RULE})`, issues);
  return spec;
}

function assign<K extends keyof LinkSpec>(spec: LinkSpec, key: K, value: LinkSpec[K] | undefined): void {
  if (value !== undefined) spec[key] = value;
}

/** A rate in tc's units, the largest unit that keeps it whole: 20000000 -> "20mbit". */
export function formatRate(bitsPerSecond: number): string {
  for (const unit of ['gbit', 'mbit', 'kbit'] as const) {
    const n = bitsPerSecond / RATE_UNITS[unit]!;
    if (Number.isInteger(n)) return `${n}${unit}`;
  }
  return `${bitsPerSecond}bit`;
}

/** The canonical text of a spec, parseable again: "rate=20mbit,loss=2%,delay=40ms"; "none" when empty. */
export function formatLinkSpec(spec: LinkSpec): string {
  const parts: string[] = [];
  if (spec.rateBitsPerSecond !== undefined) parts.push(`rate=${formatRate(spec.rateBitsPerSecond)}`);
  if (spec.lossPercent !== undefined) parts.push(`loss=${spec.lossPercent}%`);
  if (spec.delayMs !== undefined) parts.push(`delay=${spec.delayMs}ms`);
  return parts.length > 0 ? parts.join(',') : 'none';
}

/** The TUN device the delayed packets pass through (link-delay.py reads and writes it). */
export const DELAY_DEVICE = 'ptdelay0';
/** The nftables table holding the loss rule. */
export const LINK_NFT_TABLE = 'peertrain_link';
/** htb handle of the shaped UDP class; everything else goes to the unshaped default class. */
const SHAPED = '1:10';
const UNSHAPED = '1:20';
/** htb quantum in bytes: above a UDP datagram, below tc's "quantum is big" warning. */
const QUANTUM = 60_000;
/** u32 selector of UDP (IP protocol 17). */
const UDP_MATCH = 'protocol ip prio 1 u32 match ip protocol 17 0xff';

/** "tc qdisc add dev lo clsact" -> ['tc', 'qdisc', ...]: commands written as they are typed. */
function words(line: string): string[] {
  return line.split(' ');
}

/**
 * htb on `dev`: UDP (u32 match on IP protocol 17) into a class shaped to the rate, whose queue holds
 * about 100 ms at that rate (at least 64 KB), the rest into an unshaped default class.
 */
function shaperCommands(dev: string, rate: number, classifyUdp: boolean): string[][] {
  const limitBytes = Math.max(65_536, Math.round(rate / 8 / 10));
  const cmds = [
    `tc qdisc add dev ${dev} root handle 1: htb default ${classifyUdp ? '20' : '10'}`,
    `tc class add dev ${dev} parent 1: classid ${SHAPED} htb rate ${rate}bit ceil ${rate}bit quantum ${QUANTUM}`,
    `tc qdisc add dev ${dev} parent ${SHAPED} bfifo limit ${limitBytes}`,
  ];
  if (classifyUdp) {
    cmds.push(
      `tc class add dev ${dev} parent 1: classid ${UNSHAPED} htb rate 100gbit quantum ${QUANTUM}`,
      `tc filter add dev ${dev} parent 1: ${UDP_MATCH} flowid ${SHAPED}`,
    );
  }
  return cmds.map(words);
}

/**
 * The commands (argv lists, run in order inside the namespace) that impair UDP on `lo`, where every
 * peer's traffic runs (all tabs share 10.213.0.1). TCP (signaling, static pages) is left alone.
 * - delay: a u32 filter on lo's clsact egress redirects UDP (mirred) to the TUN device DELAY_DEVICE;
 *   link-delay.py holds each packet and writes it back, and the kernel delivers it locally (the TUN
 *   accepts local source addresses). The process itself is started by applyLink, not listed here.
 * - rate: htb on lo with UDP classified into the shaped class; with delay, UDP no longer reaches lo's
 *   root qdisc (redirected before it), so the TUN device gets the shaper (all it carries is UDP).
 * - loss: nftables, `numgen random mod 10000 < loss*100 drop` on the input hook, so the sender's
 *   send() never sees an error (an output-hook drop answers EPERM).
 */
export function linkCommands(spec: LinkSpec): string[][] {
  const cmds: string[][] = [];
  const delay = spec.delayMs !== undefined;
  if (delay) {
    const d = DELAY_DEVICE;
    cmds.push(
      ...[
        `ip tuntap add dev ${d} mode tun`,
        `ip link set ${d} up mtu 65535`,
        `sysctl -qw net.ipv4.conf.${d}.accept_local=1 net.ipv4.conf.all.accept_local=1`,
        `sysctl -qw net.ipv4.conf.${d}.rp_filter=0 net.ipv4.conf.all.rp_filter=0`,
        'tc qdisc add dev lo clsact',
        `tc filter add dev lo egress ${UDP_MATCH} action mirred egress redirect dev ${d}`,
      ].map(words),
    );
  }
  if (spec.rateBitsPerSecond !== undefined)
    cmds.push(...shaperCommands(delay ? DELAY_DEVICE : 'lo', spec.rateBitsPerSecond, !delay));
  if (spec.lossPercent !== undefined && spec.lossPercent > 0) {
    const permyriad = Math.round(spec.lossPercent * 100);
    cmds.push(
      words(`nft add table inet ${LINK_NFT_TABLE}`),
      [
        ...words(`nft add chain inet ${LINK_NFT_TABLE} input`),
        '{ type filter hook input priority 0; policy accept; }',
      ],
      words(
        `nft add rule inet ${LINK_NFT_TABLE} input meta l4proto udp numgen random mod 10000 < ${permyriad} drop`,
      ),
    );
  }
  return cmds;
}

/** Commands that undo linkCommands (each may fail harmlessly when its part was not applied). */
export function unlinkCommands(): string[][] {
  return [
    `nft delete table inet ${LINK_NFT_TABLE}`,
    'tc qdisc del dev lo root',
    'tc qdisc del dev lo clsact',
    `ip link del ${DELAY_DEVICE}`,
  ].map(words);
}
