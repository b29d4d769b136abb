import { ConfigError, parseRunConfig, type RunConfig, type RunConfigInput } from '@peertrain/protocol';

// The headless runner passes the run configuration in the URL: config=BASE64URL(UTF-8 JSON of a
// RunConfigInput), no padding. Decoding is strict: every failure is a ConfigError saying what was wrong.

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

function bytesToBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function base64UrlToBytes(s: string): Uint8Array {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) {
    throw new ConfigError('invalid config parameter', ['not base64url (A-Z a-z 0-9 - _, no padding)']);
  }
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

export function encodeRunConfigParam(input: RunConfigInput): string {
  return bytesToBase64Url(new TextEncoder().encode(JSON.stringify(input)));
}

/** base64url -> UTF-8 -> JSON -> parseRunConfig. Throws ConfigError. */
export function decodeRunConfigParam(param: string): RunConfig {
  const bytes = base64UrlToBytes(param.trim());
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError('invalid config parameter', ['not UTF-8 text']);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('invalid config parameter', [
      `not JSON: ${err instanceof Error ? err.message : String(err)}`,
    ]);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('invalid config parameter', ['(root): expected a JSON object']);
  }
  return parseRunConfig(json);
}
