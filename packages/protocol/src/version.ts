/** Wire protocol version. Bumped on any incompatible change to frames or control messages. */
// 2: stepsDone (several held step reports in one message). 3: WebRTC links acknowledge the bytes
// they receive (transport acks.ts): a sender waits for them, so a peer without them would stall.
export const PROTOCOL_VERSION = 3;
