import { describe, expect, it } from 'vitest';
import { ConfigError, parseRunConfig } from '@peertrain/protocol';
import { decodeRunConfigParam, encodeRunConfigParam } from './runConfigParam.ts';

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

describe('run config parameter', () => {
  it('round-trips and fills defaults', () => {
    const param = encodeRunConfigParam({ workers: 2, sync: 'ps', steps: 30, reference: true });
    expect(param).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeRunConfigParam(param)).toEqual(
      parseRunConfig({ workers: 2, sync: 'ps', steps: 30, reference: true }),
    );
  });

  it('agrees with Node base64url (no padding, - and _)', () => {
    // Non-ASCII text and '?>' make the standard alphabet produce '+' or '/' and padding.
    const input = { workers: 3, lr: 0.05, note: '\u00e9??>>~~' } as unknown as Parameters<
      typeof encodeRunConfigParam
    >[0];
    const param = encodeRunConfigParam(input);
    expect(param).toBe(b64url(JSON.stringify(input)));
    expect(param).toMatch(/[-_]/);
    expect(decodeRunConfigParam(b64url('{"steps":7}   ')).steps).toBe(7);
  });

  it('refuses bad base64url, bad UTF-8, bad JSON and non-objects with ConfigError', () => {
    expect(() => decodeRunConfigParam('abc$')).toThrow(/not base64url/);
    expect(() => decodeRunConfigParam('a')).toThrow(/not base64url/);
    expect(() => decodeRunConfigParam(Buffer.from([0xff, 0xfe]).toString('base64url'))).toThrow(/not UTF-8/);
    expect(() => decodeRunConfigParam(b64url('{workers: 2}'))).toThrow(/not JSON/);
    expect(() => decodeRunConfigParam(b64url('[1,2]'))).toThrow(/expected a JSON object/);
    expect(() => decodeRunConfigParam(b64url('null'))).toThrow(ConfigError);
  });

  it('reports invalid values through parseRunConfig', () => {
    try {
      decodeRunConfigParam(b64url(JSON.stringify({ workers: 0, sync: 'gossip' })));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const issues = (err as ConfigError).issues;
      expect(issues.some((i) => i.startsWith('workers'))).toBe(true);
      expect(issues.some((i) => i.startsWith('sync'))).toBe(true);
    }
  });
});
