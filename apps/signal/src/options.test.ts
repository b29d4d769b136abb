import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { displayHosts, joinUrls, parseStartOptions } from './options.ts';

describe('parseStartOptions', () => {
  it('defaults to localhost and the usual ports', () => {
    expect(parseStartOptions([])).toEqual({
      host: '127.0.0.1',
      port: 5173,
      signalPort: 9000,
      room: undefined,
    });
    expect(
      parseStartOptions(['--host', '0.0.0.0', '--port', '8080', '--signal-port=0', '--room', 'lab']),
    ).toEqual({
      host: '0.0.0.0',
      port: 8080,
      signalPort: 0,
      room: 'lab',
    });
    expect(parseStartOptions(['-h'])).toBeNull();
  });

  it('lists every problem in a ConfigError', () => {
    expect(() => parseStartOptions(['--port', '70000', '--signal-port', 'x', '--room', '-'])).toThrowError(
      'invalid options: --port: expected a port number 0-65535, got "70000"; ' +
        '--signal-port: expected a port number 0-65535, got "x"; ' +
        '--room: up to 64 letters and digits, optionally joined by single - or _',
    );
    expect(() => parseStartOptions(['--nope'])).toThrowError(/invalid command line: Unknown option '--nope'/);
  });
});

describe('urls', () => {
  const eth = (address: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4') =>
    ({ address, internal, family, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo;

  it('prints the LAN addresses for a wildcard host', () => {
    const ifaces = {
      lo: [eth('127.0.0.1', true)],
      eth0: [eth('192.168.1.20'), eth('fe80::1', false, 'IPv6')],
    };
    expect(displayHosts('0.0.0.0', ifaces)).toEqual(['127.0.0.1', '192.168.1.20']);
    expect(displayHosts('192.168.1.20', ifaces)).toEqual(['192.168.1.20']);
    expect(displayHosts('::1', ifaces)).toEqual(['[::1]']);
  });

  it('builds the dashboard and worker join links', () => {
    expect(joinUrls('10.0.0.2', 5173, 'lab')).toEqual({
      dashboard: 'http://10.0.0.2:5173/?room=lab',
      worker: 'http://10.0.0.2:5173/apps/worker/?room=lab',
    });
  });
});
