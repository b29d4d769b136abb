// A hostile peer on the acknowledgement channel (packages/transport/src/acks.ts): it writes what
// is no acknowledgement, and the link to it must end with a TransportError that says so while the
// transport carries on. The peer is one of this page's own transports whose 'peertrain-acks'
// channel the case writes to directly, as a modified client would.
import { peerjsTransport } from '@peertrain/transport/peerjs';
import type { ComplianceResult } from '@peertrain/transport/compliance';
import type { Connection, Transport } from '@peertrain/transport';

interface Server {
  host: string;
  port: number;
  path: string;
}

/** Every acknowledgement channel made in this page from now until `restore()`, in creation order. */
function captureAckChannels(): { channels: RTCDataChannel[]; restore: () => void } {
  const proto = RTCPeerConnection.prototype;
  const desc = Object.getOwnPropertyDescriptor(proto, 'createDataChannel')!;
  const create = desc.value as (
    this: RTCPeerConnection,
    label: string,
    init?: RTCDataChannelInit,
  ) => RTCDataChannel;
  const channels: RTCDataChannel[] = [];
  proto.createDataChannel = function (this: RTCPeerConnection, label: string, init?: RTCDataChannelInit) {
    const ch = create.call(this, label, init);
    if (label === 'peertrain-acks') channels.push(ch);
    return ch;
  };
  return { channels, restore: () => Object.defineProperty(proto, 'createDataChannel', desc) };
}

function untilOpen(ch: RTCDataChannel, ms: number): Promise<void> {
  if (ch.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ack channel still ${ch.readyState} after ${ms} ms`)),
      ms,
    );
    ch.addEventListener('open', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

function untilClosed(c: Connection, ms: number): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`link still open ${ms} ms after the hostile ack`)), ms);
    c.onClose((reason) => (clearTimeout(timer), resolve(reason)));
  });
}

/** What the hostile end writes, and what the victim's error must then name. */
const HOSTILE: readonly { what: string; bytes: () => Uint8Array<ArrayBuffer>; names: RegExp }[] = [
  { what: '3 bytes', bytes: () => new Uint8Array([1, 2, 3]), names: /malformed acknowledgement \(NaN of/ },
  {
    what: 'more bytes than were ever sent',
    bytes: () => new Uint8Array(new Float64Array([1e9]).buffer),
    names: /malformed acknowledgement \(1000000000 of 0 bytes out\)/,
  },
];

export async function hostileAckCases(server: Server): Promise<ComplianceResult[]> {
  const results: ComplianceResult[] = [];
  for (const h of HOSTILE) {
    const name = `peerjs: an acknowledgement of ${h.what} ends the link with TransportError naming it; the transport dials on`;
    const t0 = performance.now();
    const open: Transport[] = [];
    const capture = captureAckChannels();
    try {
      const make = async () => {
        const t = await peerjsTransport({
          ...server,
          id: `pth-${Math.random().toString(36).slice(2, 12)}`,
          iceServers: [],
        });
        open.push(t);
        return t;
      };
      const victim = await make();
      const hostile = await make();
      const accepted = new Promise<Connection>((resolve) => hostile.onConnection(resolve));
      const link = await victim.dial(hostile.localId);
      await accepted;
      // The dialler's connection is made first: the second channel is the hostile end's.
      const ch = capture.channels[1];
      if (capture.channels.length !== 2 || !ch) throw new Error(`${capture.channels.length} ack channels`);
      await untilOpen(ch, 15_000);
      const closed = untilClosed(link, 15_000);
      ch.send(h.bytes());
      const reason = await closed;
      if (reason?.name !== 'TransportError' || !h.names.test(reason.message))
        throw new Error(`closed with ${reason ? `${reason.name}: ${reason.message}` : 'no reason'}`);
      const refused = await link.send(new Uint8Array(4)).then(
        () => 'sent',
        (e: unknown) => (e instanceof Error ? e.name : String(e)),
      );
      if (refused === 'sent') throw new Error('the ended link still sent');
      // The victim's transport is not harmed: a new link to a third peer carries bytes.
      const third = await make();
      const got = new Promise<Uint8Array>((resolve) =>
        third.onConnection((c) => c.onMessage((d) => resolve(d))),
      );
      await (await victim.dial(third.localId)).send(new Uint8Array([7]));
      const first = await got;
      if (first[0] !== 7) throw new Error(`the next link delivered ${String(first[0])}`);
      results.push({ name, ok: true, ms: performance.now() - t0, note: `closed with: ${reason.message}` });
    } catch (err) {
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      results.push({ name, ok: false, ms: performance.now() - t0, error });
    } finally {
      capture.restore();
      await Promise.all(open.map((t) => t.close()));
    }
  }
  return results;
}
