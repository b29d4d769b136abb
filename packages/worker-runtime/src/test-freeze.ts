// Test helper: a transport that can be frozen like a browser tab (CDP Page.setWebLifecycleState
// frozen). While frozen its links stay open, but nothing it receives is handed to the page and
// nothing the page sends leaves; on thaw the held messages are delivered in order, then what it
// sent goes out in order. The runtime's own timers keep firing (Node cannot freeze them): their
// sends wait with the rest, as a thawed tab's queued tasks run at once.
import type { AbortOptions, Connection, Transport, Unsubscribe } from '@peertrain/transport';

export interface Freezer {
  freeze(): void;
  thaw(): void;
  readonly frozen: boolean;
}

interface Gate {
  frozen: boolean;
  /** Deliveries held while frozen, in arrival order. */
  held: (() => void)[];
  /** Resolves the sends waiting for the thaw. */
  waiting: (() => void)[];
}

function opened(gate: Gate): Promise<void> {
  return gate.frozen ? new Promise((resolve) => gate.waiting.push(resolve)) : Promise.resolve();
}

class FreezableConnection implements Connection {
  /** Sends go out one after another (a frozen one holds those behind it). */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly inner: Connection,
    private readonly gate: Gate,
  ) {}

  get remoteId(): string {
    return this.inner.remoteId;
  }
  get maxMessageSize(): number {
    return this.inner.maxMessageSize;
  }
  get bufferedAmount(): number {
    return this.inner.bufferedAmount;
  }
  get closed(): boolean {
    return this.inner.closed;
  }

  send(data: Uint8Array, opts?: AbortOptions): Promise<void> {
    const copy = data.slice(); // the caller may reuse its buffer once this returns
    this.queued++;
    const p = this.tail.then(() => opened(this.gate)).then(() => this.inner.send(copy, opts));
    const settled = p.finally(() => this.queued--);
    this.tail = settled.catch(() => undefined);
    return settled;
  }

  trySend(data: Uint8Array): boolean {
    return !this.gate.frozen && this.queued === 0 && this.inner.trySend(data);
  }

  onMessage(handler: (data: Uint8Array) => void): Unsubscribe {
    return this.inner.onMessage((data) => {
      if (this.gate.frozen) this.gate.held.push(() => handler(data));
      else handler(data);
    });
  }

  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return this.inner.onClose(handler);
  }

  close(): void {
    this.inner.close();
  }
}

/** `transport` with a freezer: every connection it dials or accepts obeys it. */
export function freezable(transport: Transport): { transport: Transport; freezer: Freezer } {
  const gate: Gate = { frozen: false, held: [], waiting: [] };
  const wrap = (c: Connection): Connection => new FreezableConnection(c, gate);
  return {
    transport: {
      localId: transport.localId,
      dial: async (peerId, opts) => wrap(await transport.dial(peerId, opts)),
      onConnection: (handler) => transport.onConnection((c) => handler(wrap(c))),
      close: () => transport.close(),
    },
    freezer: {
      get frozen() {
        return gate.frozen;
      },
      freeze: () => void (gate.frozen = true),
      thaw() {
        gate.frozen = false;
        for (const deliver of gate.held.splice(0)) deliver();
        for (const resume of gate.waiting.splice(0)) resume();
      },
    },
  };
}
