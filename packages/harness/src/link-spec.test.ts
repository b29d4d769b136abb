import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { DELAY_DEVICE, formatLinkSpec, linkCommands, parseLinkSpec } from './link-spec.ts';

describe('parseLinkSpec', () => {
  it('reads every key, in any order and case, with spaces', () => {
    expect(parseLinkSpec('rate=20mbit,loss=2%,delay=40ms')).toEqual({
      rateBitsPerSecond: 20_000_000,
      lossPercent: 2,
      delayMs: 40,
    });
    expect(parseLinkSpec(' delay=0.5s , RATE=1.5Mbit ')).toEqual({
      delayMs: 500,
      rateBitsPerSecond: 1_500_000,
    });
    expect(parseLinkSpec('loss=0.25%')).toEqual({ lossPercent: 0.25 });
    expect(parseLinkSpec('rate=64kbit')).toEqual({ rateBitsPerSecond: 64_000 });
  });

  it.each([
    ['', /expected KEY=VALUE/],
    ['rate', /expected KEY=VALUE/],
    ['rate=20', /rate=20: expected/],
    ['rate=20mbps', /rate=20mbps/],
    ['rate=1bit', /8kbit\.\.100gbit/],
    ['loss=2', /loss=2: expected a percentage/],
    ['loss=100%', /loss=100%/],
    ['loss=0.001%', /at most 2 decimals/],
    ['delay=40', /delay=40: expected/],
    ['delay=0ms', /0 < delay/],
    ['delay=11s', /delay=11s/],
    ['jitter=5ms', /jitter: unknown key/],
    ['rate=1mbit,rate=2mbit', /rate: given twice/],
  ])('refuses %j with ConfigError', (text, message) => {
    expect(() => parseLinkSpec(text)).toThrow(ConfigError);
    expect(() => parseLinkSpec(text)).toThrow(message);
  });

  it('names every bad part at once', () => {
    try {
      parseLinkSpec('rate=x,loss=y');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toHaveLength(2);
    }
  });
});

describe('formatLinkSpec', () => {
  it('round-trips through parseLinkSpec', () => {
    for (const text of [
      'rate=20mbit,loss=2%,delay=40ms',
      'rate=1500kbit',
      'loss=0.5%',
      'delay=250ms',
      'rate=1gbit',
    ]) {
      expect(formatLinkSpec(parseLinkSpec(text))).toBe(text);
    }
    expect(formatLinkSpec(parseLinkSpec('delay=1s'))).toBe('delay=1000ms');
    expect(formatLinkSpec({})).toBe('none');
  });
});

describe('linkCommands', () => {
  const flat = (cmds: string[][]): string[] => cmds.map((c) => c.join(' '));

  it('rate alone: htb on lo, UDP (protocol 17) into the shaped class, the rest unshaped', () => {
    const cmds = flat(linkCommands({ rateBitsPerSecond: 20_000_000 }));
    expect(cmds[0]).toBe('tc qdisc add dev lo root handle 1: htb default 20');
    expect(cmds).toContain(
      'tc class add dev lo parent 1: classid 1:10 htb rate 20000000bit ceil 20000000bit quantum 60000',
    );
    expect(cmds.some((c) => c.includes('u32 match ip protocol 17 0xff flowid 1:10'))).toBe(true);
    expect(cmds.some((c) => c.startsWith('nft') || c.includes(DELAY_DEVICE))).toBe(false);
  });

  it('loss: an nftables input rule in 1/10000ths', () => {
    const cmds = flat(linkCommands({ lossPercent: 2.5 }));
    expect(cmds.at(-1)).toBe(
      'nft add rule inet peertrain_link input meta l4proto udp numgen random mod 10000 < 250 drop',
    );
    expect(linkCommands({ lossPercent: 0 })).toEqual([]);
  });

  it('delay: UDP redirected to the TUN device, which then carries the shaper', () => {
    const cmds = flat(linkCommands({ delayMs: 40, rateBitsPerSecond: 1_000_000 }));
    expect(cmds[0]).toBe(`ip tuntap add dev ${DELAY_DEVICE} mode tun`);
    expect(cmds.some((c) => c.endsWith(`mirred egress redirect dev ${DELAY_DEVICE}`))).toBe(true);
    expect(cmds).toContain(`tc qdisc add dev ${DELAY_DEVICE} root handle 1: htb default 10`);
    expect(cmds.some((c) => c.includes('dev lo root'))).toBe(false);
  });
});
