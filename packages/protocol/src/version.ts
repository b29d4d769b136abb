/** Wire protocol version. Bumped on any incompatible change to frames or control messages. */
export const PROTOCOL_VERSION = 2; // 2: stepsDone (several held step reports in one message)
