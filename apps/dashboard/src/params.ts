import {
  ConfigError,
  parseRunConfig,
  randomId,
  toWireError,
  validateRoom,
  type RunConfig,
  type WireError,
} from '@peertrain/protocol';
import { decodeRunConfigParam } from './runConfigParam.ts';

// Dashboard URL: /?room=ROOM[&headless=1&config=BASE64URL(JSON)&faults=a,b&resume=1]

export interface HeadlessRequest {
  config: RunConfig;
  faults: string[];
  /** `resume=1`: start from the checkpoint the harness hands over (window.peertrainResume). */
  resume?: true;
  /**
   * `model=1`: hand the trained parameters to the harness (the `model` event: the CLI's
   * --export-model). Without it the event stays in the page: wideMlp's 16 MB took 2.8 s to cross.
   */
  model?: true;
}

export interface DashboardParams {
  /** Valid room, generated when the URL had none. */
  room: string;
  /** True when `room` was generated here: the caller writes it into the URL. */
  roomGenerated: boolean;
  /** Set when the URL's room is invalid; `room` is then a fresh random one. */
  roomError: WireError | null;
  headless: boolean;
  /** The headless run, or why its config is unusable. Null when not headless. */
  request: { ok: true; value: HeadlessRequest } | { ok: false; error: WireError } | null;
}

export function parseFaults(param: string | null): string[] {
  if (param === null) return [];
  return param
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

export function parseDashboardParams(
  search: string,
  newRoom: () => string = () => randomId(8),
): DashboardParams {
  const q = new URLSearchParams(search);
  const given = q.get('room');
  let room: string;
  let roomGenerated = false;
  let roomError: WireError | null = null;
  if (given === null || given === '') {
    room = newRoom();
    roomGenerated = true;
  } else {
    try {
      room = validateRoom(given);
    } catch (err) {
      roomError = toWireError(err);
      room = newRoom();
    }
  }
  const headless = q.get('headless') === '1';
  let request: DashboardParams['request'] = null;
  if (headless) {
    try {
      const param = q.get('config');
      const config = param === null || param === '' ? parseRunConfig({}) : decodeRunConfigParam(param);
      const resume = q.get('resume') === '1' ? { resume: true as const } : {};
      const model = q.get('model') === '1' ? { model: true as const } : {};
      request = { ok: true, value: { config, faults: parseFaults(q.get('faults')), ...resume, ...model } };
    } catch (err) {
      request = {
        ok: false,
        error: toWireError(err instanceof ConfigError ? err : new ConfigError(String(err))),
      };
    }
  }
  return { room, roomGenerated, roomError, headless, request };
}

/** The search string with `room` set, other parameters kept. */
export function withRoom(search: string, room: string): string {
  const q = new URLSearchParams(search);
  q.set('room', room);
  return `?${q.toString()}`;
}

export function workerShareLink(origin: string, room: string): string {
  return `${origin}/apps/worker/?room=${encodeURIComponent(room)}`;
}
