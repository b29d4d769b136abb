// Tab links in real Chromium (tab-links.e2e.test.ts opens this page in several tabs of one
// profile): the real SharedWorker broker and Web Locks. The inner transport is an in-memory one
// that knows no one, so any link that works here went through the browser.
import { createMemoryNetwork, memoryTransport } from '@peertrain/transport';
import type { Connection, Transport } from '@peertrain/transport';
import { runComplianceCases, transportComplianceCases } from '@peertrain/transport/compliance';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import { withTabLinks } from '@peertrain/transport/tab-links';

const nowhere = createMemoryNetwork();

/** A transport of this tab: tab links over an inner transport that reaches no one. */
async function open(id: string): Promise<Transport> {
  const inner = memoryTransport(nowhere, id);
  const t = withTabLinks(inner);
  if (t === inner || !(await (t as Transport & { ready: Promise<boolean> }).ready)) {
    throw new Error('tab links did not start (no SharedWorker or Web Locks, or the broker did not answer)');
  }
  return t;
}

interface Check {
  compliance(): Promise<ComplianceResult[]>;
  /** Opens this tab's transport as `id`; accepted links are kept. */
  open(id: string): Promise<void>;
  /** Dials `id`; resolves with the link's kind. */
  dial(id: string): Promise<string | undefined>;
  /** How the dialled link closed: null while open; else the error's name and ms since `dial` resolved. */
  closed(): { name: string; message: string; ms: number } | null;
}

let mine: Transport | null = null;
const accepted: Connection[] = [];
let link: {
  conn: Connection;
  at: number;
  closed: { name: string; message: string; ms: number } | null;
} | null = null;

const check: Check = {
  async compliance() {
    let n = 0;
    const cases = transportComplianceCases(
      async () => {
        n++;
        const a = await open(`check-a-${n}`);
        const b = await open(`check-b-${n}`);
        return { a, b, cleanup: () => Promise.all([a.close(), b.close()]).then(() => undefined) };
      },
      { maxBufferedAmount: (8 << 20) + (1 << 20), eventTimeoutMs: 10_000 },
    );
    return runComplianceCases(cases, { caseTimeoutMs: 60_000 });
  },
  async open(id) {
    mine = await open(id);
    mine.onConnection((c) => accepted.push(c));
  },
  async dial(id) {
    if (!mine) throw new Error('open first');
    const conn = await mine.dial(id);
    const l = {
      conn,
      at: performance.now(),
      closed: null as { name: string; message: string; ms: number } | null,
    };
    conn.onClose((reason) => {
      l.closed = {
        name: reason?.name ?? 'closed',
        message: reason?.message ?? '',
        ms: Math.round(performance.now() - l.at),
      };
    });
    link = l;
    return conn.kind;
  },
  closed: () => link?.closed ?? null,
};
(globalThis as unknown as { __tabLinks: Check }).__tabLinks = check;
