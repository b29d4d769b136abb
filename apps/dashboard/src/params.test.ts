import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import { parseDashboardParams, parseFaults, withRoom, workerShareLink } from './params.ts';
import { encodeRunConfigParam } from './runConfigParam.ts';

const fixedRoom = (): string => 'newroom1';

describe('dashboard params', () => {
  it('generates a room when none is given', () => {
    const p = parseDashboardParams('', fixedRoom);
    expect(p).toMatchObject({
      room: 'newroom1',
      roomGenerated: true,
      roomError: null,
      headless: false,
      request: null,
    });
  });

  it('keeps a valid room, replaces an invalid one and says why', () => {
    expect(parseDashboardParams('?room=lab-3', fixedRoom)).toMatchObject({
      room: 'lab-3',
      roomGenerated: false,
    });
    const bad = parseDashboardParams('?room=Bad%20Room', fixedRoom);
    expect(bad.room).toBe('newroom1');
    expect(bad.roomError?.name).toBe('ConfigError');
  });

  it('decodes the headless request with its faults', () => {
    const config = encodeRunConfigParam({ workers: 2, steps: 20 });
    const p = parseDashboardParams(
      `?room=r1&headless=1&config=${config}&faults=malformed,%20slow,`,
      fixedRoom,
    );
    expect(p.headless).toBe(true);
    expect(p.request).toEqual({
      ok: true,
      value: { config: parseRunConfig({ workers: 2, steps: 20 }), faults: ['malformed', 'slow'] },
    });
  });

  it('asks for the trained parameters with model=1 only', () => {
    const request = (search: string) => parseDashboardParams(search, fixedRoom).request;
    expect(request('?room=r1&headless=1&model=1')).toEqual({
      ok: true,
      value: { config: parseRunConfig({}), faults: [], model: true },
    });
    expect(request('?room=r1&headless=1&model=0')).toEqual({
      ok: true,
      value: { config: parseRunConfig({}), faults: [] },
    });
  });

  it('uses defaults when headless has no config, and reports a bad one', () => {
    expect(parseDashboardParams('?room=r1&headless=1', fixedRoom).request).toEqual({
      ok: true,
      value: { config: parseRunConfig({}), faults: [] },
    });
    const p = parseDashboardParams('?room=r1&headless=1&config=%%%', fixedRoom);
    expect(p.request?.ok).toBe(false);
    expect(p.request?.ok === false && p.request.error.name).toBe('ConfigError');
  });

  it('builds URLs', () => {
    expect(withRoom('?headless=1&room=old', 'new')).toBe('?headless=1&room=new');
    expect(withRoom('', 'r')).toBe('?room=r');
    expect(workerShareLink('http://10.0.0.2:4173', 'lab-3')).toBe(
      'http://10.0.0.2:4173/apps/worker/?room=lab-3',
    );
    expect(parseFaults(null)).toEqual([]);
  });
});
