import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@peertrain/protocol';
import { DEFAULT_CHROMIUM } from '@peertrain/harness';
import {
  ICE_CREDENTIAL_ENV,
  USAGE,
  displayHosts,
  joinUrls,
  parseIceServers,
  parseStartOptions,
  gpuWorkerCommand,
  startBanner,
} from './options.ts';

/** The ConfigError's issues for `argv`, or a failure when it parses. */
function issuesOf(argv: string[], env: Record<string, string> = {}): readonly string[] {
  try {
    parseStartOptions(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error(`parsed: ${argv.join(' ')}`);
}

describe('parseStartOptions', () => {
  it('defaults to localhost, the usual ports and no ICE servers', () => {
    expect(parseStartOptions([])).toEqual({
      host: '127.0.0.1',
      port: 5173,
      signalPort: 9000,
      room: undefined,
      iceServers: [],
      gpu: false,
    });
    expect(
      parseStartOptions(['--host', '0.0.0.0', '--port', '8080', '--signal-port=0', '--room', 'lab']),
    ).toEqual({
      host: '0.0.0.0',
      port: 8080,
      signalPort: 0,
      room: 'lab',
      iceServers: [],
      gpu: false,
    });
    expect(parseStartOptions(['-h'])).toBeNull();
    expect(parseStartOptions(['--help'])).toBeNull();
  });

  it('accepts IP addresses and host names for --host, and refuses anything else', () => {
    for (const host of ['192.168.1.20', '::', '::1', 'fe80::1', 'my-laptop.local', 'localhost']) {
      expect(parseStartOptions(['--host', host])?.host).toBe(host);
    }
    expect(issuesOf(['--host', ''])).toEqual(['--host: expected an IP address or a host name, got ""']);
    expect(issuesOf(['--host', 'http://x'])).toHaveLength(1);
    expect(issuesOf(['--host', 'a b'])).toHaveLength(1);
  });

  it('lists every problem in a ConfigError', () => {
    expect(() => parseStartOptions(['--port', '70000', '--signal-port', 'x', '--room', '-'])).toThrowError(
      'invalid options: --port: expected a port number 0-65535, got "70000"; ' +
        '--signal-port: expected a port number 0-65535, got "x"; ' +
        '--room: up to 64 letters and digits, optionally joined by single - or _',
    );
    expect(() => parseStartOptions(['--nope'])).toThrowError(/invalid command line: Unknown option '--nope'/);
    expect(() => parseStartOptions(['--ice'])).toThrowError(/invalid command line: .*--ice/);
  });
});

describe('--ice', () => {
  it('puts STUN URLs in one entry, comma-separated or repeated', () => {
    const o = parseStartOptions([
      '--ice',
      'stun:stun.example.org,stun:10.0.0.1:3478',
      '--ice=stuns:[2001:db8::1]:5349',
    ]);
    expect(o?.iceServers).toEqual([
      { urls: ['stun:stun.example.org', 'stun:10.0.0.1:3478', 'stuns:[2001:db8::1]:5349'] },
    ]);
  });

  it('gives TURN URLs their own entry with the user name and credential', () => {
    const o = parseStartOptions([
      ...['--ice', 'stun:turn.example.org:3478,turn:turn.example.org:3478?transport=udp'],
      ...['--ice', 'turns:turn.example.org:5349?transport=tcp'],
      ...['--ice-username', 'peertrain', '--ice-credential', 's3cret'],
    ]);
    expect(o?.iceServers).toEqual([
      { urls: ['stun:turn.example.org:3478'] },
      {
        urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349?transport=tcp'],
        username: 'peertrain',
        credential: 's3cret',
      },
    ]);
  });

  it(`takes the TURN credential from ${ICE_CREDENTIAL_ENV} when the flag is absent`, () => {
    const env = { [ICE_CREDENTIAL_ENV]: 'from-env' };
    const argv = ['--ice', 'turn:t.example.org', '--ice-username', 'u'];
    expect(parseStartOptions(argv, env)?.iceServers[0]?.credential).toBe('from-env');
    // The flag wins; without a TURN URL the variable is ignored, not an error.
    expect(parseStartOptions([...argv, '--ice-credential', 'flag'], env)?.iceServers[0]?.credential).toBe(
      'flag',
    );
    expect(parseStartOptions(['--ice', 'stun:s.example.org'], env)?.iceServers).toEqual([
      { urls: ['stun:s.example.org'] },
    ]);
  });

  it('refuses URLs a browser would refuse, naming each', () => {
    expect(
      issuesOf([
        '--ice',
        'http://stun.example.org,stun:,stun:h:0,stun:h:70000,stun:h?transport=udp,turn:[1::2::3],stun:bad_host,,',
      ]),
    ).toEqual([
      '--ice "http://stun.example.org": expected stun:HOST[:PORT], stuns:, turn:HOST[:PORT][?transport=udp|tcp] or turns:',
      '--ice "stun:": expected stun:HOST[:PORT], stuns:, turn:HOST[:PORT][?transport=udp|tcp] or turns:',
      '--ice "stun:h:0": port 0 out of range 1-65535',
      '--ice "stun:h:70000": port 70000 out of range 1-65535',
      '--ice "stun:h?transport=udp": ?transport= is for turn: URLs only',
      '--ice "turn:[1::2::3]": bad IPv6 address [1::2::3]',
      '--ice "stun:bad_host": expected stun:HOST[:PORT], stuns:, turn:HOST[:PORT][?transport=udp|tcp] or turns:',
      '--ice "": empty URL',
      '--ice "": empty URL',
    ]);
  });

  it('requires both TURN credentials, and refuses credentials without a TURN URL', () => {
    expect(issuesOf(['--ice', 'turn:t.example.org'])).toEqual([
      '--ice-username: required with a turn: URL',
      `--ice-credential: required with a turn: URL (or set ${ICE_CREDENTIAL_ENV})`,
    ]);
    expect(issuesOf(['--ice', 'turns:t.example.org', '--ice-credential', 'x'])).toEqual([
      '--ice-username: required with a turn: URL',
    ]);
    expect(issuesOf(['--ice', 'stun:s.example.org', '--ice-username', 'u'])).toEqual([
      '--ice-username / --ice-credential: only TURN servers take them; add --ice turn:HOST',
    ]);
    expect(issuesOf(['--ice-credential', 'x'])).toHaveLength(1);
  });

  it('parseIceServers appends to the caller issue list and returns nothing invalid', () => {
    const issues = ['earlier'];
    expect(parseIceServers(['stun:ok.example.org', 'ftp:x'], {}, issues)).toEqual([
      { urls: ['stun:ok.example.org'] },
    ]);
    expect(issues).toHaveLength(2);
    expect(issues[0]).toBe('earlier');
  });

  it('is documented in the help text', () => {
    for (const flag of [
      '--host',
      '--port',
      '--signal-port',
      '--room',
      '--ice',
      '--ice-username',
      '--ice-credential',
    ])
      expect(USAGE).toContain(flag);
    expect(USAGE).toContain(ICE_CREDENTIAL_ENV);
  });
});

describe('urls', () => {
  const eth = (address: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4') =>
    ({ address, internal, family, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo;
  const ifaces = {
    lo: [eth('127.0.0.1', true)],
    eth0: [eth('192.168.1.20'), eth('fe80::1', false, 'IPv6')],
    wlan0: [eth('10.0.0.7')],
  };

  it('prints one host per LAN IPv4 address for a wildcard host', () => {
    expect(displayHosts('0.0.0.0', ifaces)).toEqual(['127.0.0.1', '192.168.1.20', '10.0.0.7']);
    expect(displayHosts('::', ifaces)).toEqual(['127.0.0.1', '192.168.1.20', '10.0.0.7']);
    expect(displayHosts('192.168.1.20', ifaces)).toEqual(['192.168.1.20']);
    expect(displayHosts('::1', ifaces)).toEqual(['[::1]']);
  });

  it('builds the dashboard and worker join links', () => {
    expect(joinUrls('10.0.0.2', 5173, 'lab')).toEqual({
      dashboard: 'http://10.0.0.2:5173/?room=lab',
      worker: 'http://10.0.0.2:5173/apps/worker/?room=lab',
    });
  });

  const base = { port: 5173, signalPort: 9000, signalPath: '/peerjs', room: 'lab' };

  it('prints a link pair per LAN address, the signaling address and ICE servers without secrets', () => {
    const lines = startBanner(
      {
        ...base,
        host: '0.0.0.0',
        iceServers: [
          { urls: ['stun:s.example.org'] },
          { urls: ['turn:t.example.org'], username: 'u', credential: 's3cret' },
        ],
      },
      ifaces,
    );
    expect(lines.filter((l) => l.includes('/apps/worker/?room=lab'))).toEqual([
      '  worker     http://127.0.0.1:5173/apps/worker/?room=lab',
      '  worker     http://192.168.1.20:5173/apps/worker/?room=lab',
      '  worker     http://10.0.0.7:5173/apps/worker/?room=lab',
    ]);
    expect(lines).toContain('  signaling  ws://10.0.0.7:9000/peerjs');
    expect(lines).toContain('  ice        stun:s.example.org');
    expect(lines).toContain('  ice        turn:t.example.org (user u)');
    expect(lines.join('\n')).not.toContain('s3cret');
  });

  it('--gpu: a headless Chromium command for a GPU worker tab on this machine', () => {
    expect(parseStartOptions(['--gpu'])?.gpu).toBe(true);
    const lines = startBanner(
      {
        ...base,
        host: '0.0.0.0',
        iceServers: [],
        gpuEnv: { PEERTRAIN_NVIDIA_ROOT: '/nonexistent-peertrain' },
      },
      ifaces,
    );
    const gpu = lines.filter((l) => l.startsWith('  gpu worker '));
    expect(gpu).toHaveLength(1);
    expect(gpu[0]!.startsWith(`  gpu worker ${DEFAULT_CHROMIUM} `)).toBe(true);
    expect(gpu[0]).toMatch(/ --headless .*--use-angle=vulkan /);
    expect(gpu[0]).toContain('--enable-features=Vulkan,VulkanFromANGLE,DefaultANGLEVulkan');
    expect(gpu[0]).toMatch(/ 'http:\/\/127\.0\.0\.1:5173\/apps\/worker\/\?room=lab'$/);
    expect(gpuWorkerCommand('http://h/', {}, () => true)).toMatch(
      /^VK_DRIVER_FILES=\/usr\/local\/nvidia\/share\/vulkan\/icd\.d\/nvidia_icd\.json __EGL_VENDOR_LIBRARY_FILENAMES=\S+ LD_LIBRARY_PATH=\/usr\/local\/nvidia\/lib64 /,
    );
    expect(startBanner({ ...base, host: '0.0.0.0', iceServers: [] }, ifaces).join('\n')).not.toContain(
      'gpu worker',
    );
  });

  it('says when other devices cannot join', () => {
    const local = startBanner({ ...base, host: '127.0.0.1', iceServers: [] }, ifaces);
    expect(local.at(-1)).toMatch(/this machine only: --host 0\.0\.0\.0/);
    const lonely = startBanner({ ...base, host: '0.0.0.0', iceServers: [] }, { lo: ifaces.lo });
    expect(lonely.at(-1)).toMatch(/no LAN IPv4 address/);
    const lan = startBanner({ ...base, host: '192.168.1.20', iceServers: [] }, ifaces);
    expect(lan.at(-1)).toBe('  signaling  ws://192.168.1.20:9000/peerjs');
  });
});
