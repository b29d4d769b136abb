import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { fetchPageConfig, parsePageConfig, signalUrl } from './pageConfig.ts';

const good = { signal: { host: '10.0.0.1', port: 9000, path: '/peerjs', secure: false }, iceServers: [] };

function fakeFetch(res: Response | Error): typeof fetch {
  return () => (res instanceof Error ? Promise.reject(res) : Promise.resolve(res));
}

describe('parsePageConfig', () => {
  it('accepts the documented shape', () => {
    expect(parsePageConfig(good, 'page.host')).toEqual({ ...good, tabLinks: true });
  });

  it('fills a missing host from the page and keeps ICE servers', () => {
    const cfg = parsePageConfig(
      {
        signal: { port: 443, path: '/p', secure: true },
        iceServers: [{ urls: ['stun:a', 'stun:b'] }, { urls: 'turn:t', username: 'u', credential: 'c' }],
      },
      'page.host',
    );
    expect(cfg.signal.host).toBe('page.host');
    expect(cfg.iceServers).toEqual([
      { urls: ['stun:a', 'stun:b'] },
      { urls: 'turn:t', username: 'u', credential: 'c' },
    ]);
    expect(signalUrl(cfg.signal)).toBe('wss://page.host:443/p');
  });

  it('lists every problem in one ConfigError', () => {
    try {
      parsePageConfig({ signal: { port: 0, path: 'x', secure: 'no' }, iceServers: [{ urls: 3 }] }, 'h');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        'signal.port: expected an integer 1-65535',
        'signal.path: expected a path starting with /',
        'signal.secure: expected a boolean',
        'iceServers.0.urls: expected a string or an array of strings',
      ]);
    }
  });

  it('refuses non-objects', () => {
    expect(() => parsePageConfig('<html>', 'h')).toThrow(ConfigError);
    expect(() => parsePageConfig({ ...good, iceServers: undefined }, 'h')).toThrow(
      /iceServers: expected an array/,
    );
  });
});

describe('fetchPageConfig', () => {
  it('parses a good response', async () => {
    const cfg = await fetchPageConfig({ defaultHost: 'h', fetchFn: fakeFetch(Response.json(good)) });
    expect(cfg.signal.port).toBe(9000);
  });

  it('turns HTTP errors, network errors and HTML into ConfigError', async () => {
    await expect(
      fetchPageConfig({ defaultHost: 'h', fetchFn: fakeFetch(new Response('nope', { status: 404 })) }),
    ).rejects.toThrow(/cannot load \/peertrain.json: HTTP 404/);
    await expect(
      fetchPageConfig({ defaultHost: 'h', fetchFn: fakeFetch(new TypeError('Failed to fetch')) }),
    ).rejects.toThrow(ConfigError);
    await expect(
      fetchPageConfig({
        defaultHost: 'h',
        fetchFn: fakeFetch(new Response('<!doctype html>', { status: 200 })),
      }),
    ).rejects.toThrow(/not JSON/);
  });

  it('rejects with the abort reason, not a ConfigError', async () => {
    const ac = new AbortController();
    const reason = new Error('page closed');
    ac.abort(reason);
    const fetchFn = ((_u: string, init?: RequestInit) =>
      Promise.reject(init?.signal?.reason as Error)) as unknown as typeof fetch;
    await expect(fetchPageConfig({ defaultHost: 'h', signal: ac.signal, fetchFn })).rejects.toBe(reason);
  });
});
