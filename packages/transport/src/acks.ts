// A WebRTC link's acknowledged window: a sender keeps at most `window` bytes out ahead of the
// receiver's acknowledgements, which travel on a second channel of the same RTCPeerConnection,
// negotiated out of band (both ends create it with ACK_CHANNEL_ID; PeerJS's own channel takes 0 or 1).
//
// Why (measured 2026-12-06, Chromium 156): in a bulk transfer (a pipeline's final gather and model
// upload) the renderer drops packets it cannot hand to the network service ("UDP send ... failed
// with error 11") and SCTP resends them, with gaps of 0.4-1.5 s; neither a lower bufferedAmount
// mark nor pacing each link shortened them. The bench's headline pipeline (wideMlp 1F1B, 4 tabs,
// 30 steps, alternating runs) went from its last step to the final evaluation in 7.6-9.7 s without
// a window, in 2.9-3.4 s with 256 KiB (3.0-3.1 s at 128 KiB, 2.5 s at 512 KiB); its steps and the
// default all-reduce run (1:08-1:17 either way) did not change. With Chromium's log on, 2 runs each:
// 928-2,412 dropped packets logged without the window, 0 with it.
import { DrainWaiters } from './internal.ts';

export const DEFAULT_ACK_WINDOW = 2 ** 18;
const ACK_CHANNEL_ID = 1001;
/** A receiver acknowledges once this many bytes are in, or ACK_DELAY_MS after the first of fewer. */
const ACK_EVERY_BYTES = 2 ** 15;
const ACK_DELAY_MS = 2;

/**
 * A link's acknowledged window, the sending side: bytes sent and not yet acknowledged by the other
 * end. A send waits (wait()) while `window` bytes or more are out; acked() lets it go on. 0: off.
 */
export class AckWindow {
  private outstanding = 0;
  private readonly waiters = new DrainWaiters();

  constructor(readonly window: number) {}

  /** Bytes sent and not yet acknowledged. */
  get inFlight(): number {
    return this.outstanding;
  }

  get full(): boolean {
    return this.window > 0 && this.outstanding >= this.window;
  }

  sent(bytes: number): void {
    if (this.window > 0) this.outstanding += bytes;
  }

  /** The other end took `bytes` more; a bad count (not a positive number up to what is out) is refused. */
  acked(bytes: number): boolean {
    if (!(bytes > 0 && bytes <= this.outstanding)) return false;
    this.outstanding -= bytes;
    if (!this.full) this.waiters.wake();
    return true;
  }

  /** Resolves once the window has room (at once when it has). */
  async wait(signal: AbortSignal | undefined): Promise<void> {
    while (this.full) await this.waiters.wait(signal);
  }

  fail(err: Error): void {
    this.waiters.fail(err);
  }
}

/**
 * The receiving side: counts bytes in and says when to acknowledge them: once `every` bytes are
 * in, or `delayMs` after the first of fewer (flush() then sends them).
 */
export class AckCounter {
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly every: number,
    private readonly delayMs: number,
    private readonly send: (bytes: number) => boolean,
  ) {}

  received(bytes: number): void {
    this.pending += bytes;
    if (this.pending >= this.every) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Acknowledges what came so far; if `send` cannot yet (its channel not open), tries again later. */
  flush(): void {
    this.stop();
    if (this.pending === 0) return;
    if (this.send(this.pending)) this.pending = 0;
    else this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * Both sides of one link's window. `onMalformed` ends the link: an acknowledgement that is not 8
 * bytes holding a float64 count of bytes out.
 */
export class LinkAcks {
  readonly window: AckWindow;
  private readonly counter: AckCounter;
  private readonly channel: RTCDataChannel | null;

  constructor(
    pc: RTCPeerConnection,
    windowBytes: number,
    private readonly onMalformed: (detail: string) => void,
  ) {
    this.window = new AckWindow(windowBytes);
    this.channel =
      windowBytes > 0
        ? pc.createDataChannel('peertrain-acks', { negotiated: true, id: ACK_CHANNEL_ID })
        : null;
    if (this.channel) {
      this.channel.binaryType = 'arraybuffer';
      this.channel.addEventListener('message', this.onAck);
    }
    this.counter = new AckCounter(ACK_EVERY_BYTES, ACK_DELAY_MS, (bytes) => {
      if (this.channel?.readyState !== 'open') return false;
      this.channel.send(new Float64Array([bytes]));
      return true;
    });
  }

  /** `bytes` came in on the link: acknowledged soon. */
  received(bytes: number): void {
    if (this.channel) this.counter.received(bytes);
  }

  private readonly onAck = (e: MessageEvent): void => {
    const data: unknown = e.data;
    const count =
      data instanceof ArrayBuffer && data.byteLength === 8 ? new Float64Array(data)[0]! : Number.NaN;
    if (!this.window.acked(count))
      this.onMalformed(`malformed acknowledgement (${String(count)} of ${this.window.inFlight} bytes out)`);
  };

  /** The link closed: waiting sends fail with `reason`, nothing more is acknowledged. */
  close(reason: Error): void {
    this.window.fail(reason);
    this.counter.stop();
    this.channel?.removeEventListener('message', this.onAck);
  }
}
