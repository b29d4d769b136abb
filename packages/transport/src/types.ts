import type {
  ControlMessage,
  DType,
  LinkKind,
  ProtocolError,
  PeerLostError,
  TensorMessage,
} from '@peertrain/protocol';

// The wire's tensor message and dtypes are protocol's; re-exported for transport users.
export type { DType, TensorMessage };

/** Returned by every subscribe(): calling it removes the handler. */
export type Unsubscribe = () => void;

export interface AbortOptions {
  signal?: AbortSignal;
}

/**
 * One reliable, ordered, message-oriented link to one remote peer (an RTCDataChannel or an
 * in-memory pipe). Messages are opaque bytes of at most `maxMessageSize`; framing, chunking and
 * validation live above, in the Mesh.
 */
export interface Connection {
  readonly remoteId: string;
  /** What carries it (absent: unknown). */
  readonly kind?: LinkKind;
  /** Largest message `send` accepts, in bytes (the data channel's sctp.maxMessageSize). */
  readonly maxMessageSize: number;
  /** Bytes queued but not yet handed to the network. */
  readonly bufferedAmount: number;
  readonly closed: boolean;
  /**
   * Queues one message. Resolves once it is queued and the queue is below the high-water mark
   * (backpressure): callers that await every send never grow the buffer without bound.
   * Rejects with TransportError if the message is too large or the link is closed.
   */
  send(data: Uint8Array, opts?: AbortOptions): Promise<void>;
  /**
   * Queues one message now, without yielding, if the link is open, the message fits and the queue
   * is below the high-water mark; otherwise queues nothing and returns false (`send` then waits, or
   * rejects with the reason). Lets a sender put all frames of a message on the wire back to back
   * before its caller goes on to compute.
   */
  trySend(data: Uint8Array): boolean;
  onMessage(handler: (data: Uint8Array) => void): Unsubscribe;
  onClose(handler: (reason?: Error) => void): Unsubscribe;
  close(): void;
}

/** Opens and accepts Connections. Adapters: memory (tests) and peerjs (browsers). */
export interface Transport {
  readonly localId: string;
  dial(peerId: string, opts?: AbortOptions): Promise<Connection>;
  onConnection(handler: (conn: Connection) => void): Unsubscribe;
  close(): Promise<void>;
}

/** Identity of a tensor message; a receiver waits for an exact match from a given peer. */
export interface TensorKey {
  runId: number;
  step: number;
  /** null when the tensor is not tied to a micro-batch. */
  microBatch: number | null;
  /** What the tensor is, chosen by the algorithm (e.g. all-reduce bucket and chunk). */
  tag: number;
}

export interface LinkStats {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  framesRefused: number;
}

/**
 * Peer-addressed messaging over a Transport: frames and chunks messages below each link's
 * maxMessageSize, reassembles and validates on arrival, and matches tensors to waiting receivers.
 * A malformed frame is dropped and reported through onError; the link stays open.
 */
export interface Mesh {
  readonly localId: string;
  /** Opens (or reuses) a link to peerId. */
  connect(peerId: string, opts?: AbortOptions): Promise<void>;
  isConnected(peerId: string): boolean;
  /** What carries the link messages to peerId go on; null when there is none (or its kind is unknown). */
  linkKind(peerId: string): LinkKind | null;
  peers(): string[];
  sendControl(peerId: string, msg: ControlMessage, opts?: AbortOptions): Promise<void>;
  /**
   * Sends a tensor. The payload is read before this returns (encoded into frames, or copied while a
   * dial is pending), so the caller may reuse `msg.data` at once.
   */
  sendTensor(peerId: string, msg: TensorMessage, opts?: AbortOptions): Promise<void>;
  /**
   * Resolves with the tensor matching `key` from `peerId` (buffered if it arrived earlier).
   * Rejects with PeerLostError if the link closes first, or the signal's reason on abort.
   */
  recvTensor(peerId: string, key: TensorKey, opts?: AbortOptions): Promise<TensorMessage>;
  onControl(handler: (from: string, msg: ControlMessage) => void): Unsubscribe;
  onPeer(handler: (peerId: string, event: 'open' | 'close') => void): Unsubscribe;
  /** Refused frames (ProtocolError) and lost peers (PeerLostError). */
  onError(handler: (from: string, err: ProtocolError | PeerLostError) => void): Unsubscribe;
  /** Sends raw bytes, bypassing framing: for fault injection and benchmarks only. */
  sendRaw(peerId: string, bytes: Uint8Array, opts?: AbortOptions): Promise<void>;
  stats(): { total: LinkStats; perPeer: Record<string, LinkStats> };
  close(): Promise<void>;
}
