// What phone-check/run.ts measures and prints; shared with phone.e2e.test.ts (importing run.ts would run it).

/** The phone the brief asks for: a small Android screen, CSS pixels. */
export const PHONE = { width: 360, height: 740 } as const;
/** What `--ice` puts into /peertrain.json here: our own veth address, where nothing answers. */
export const ICE_URL = 'stun:10.213.0.1:3478';
/** Every field the worker page must show on a phone (`data-testid="worker-<id>"`). */
export const FIELDS = [
  'phase',
  'phase-text',
  'room',
  'peer-id',
  'role',
  'shard',
  'backend',
  'memory',
  'rank',
  'progress',
  'loss',
  'sent',
  'received',
  'refused',
  'last-error',
  'leave',
] as const;

export interface Layout {
  innerWidth: number;
  scrollWidth: number;
  /** Fields that are not visible or stick out of the viewport, with their box. */
  offenders: string[];
}

export interface PhoneCheckResult {
  /** The worker link `npm start` printed. */
  joinUrl: string;
  /** GET /peertrain.json as served. */
  pageConfig: unknown;
  /** The phone's fields while training: testid -> text. */
  training: Record<string, string>;
  trainingLayout: Layout;
  /** aria-valuenow / aria-valuemax of the progress bar. */
  progress: { now: number; max: number };
  leftPhase: string;
  leftLayout: Layout;
  joinAgainVisible: boolean;
  screenshots: string[];
  /** Console errors of the phone page. */
  phoneErrors: string[];
  ms: { serverUp: number; training: number };
}
