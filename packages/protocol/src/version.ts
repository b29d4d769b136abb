/** Wire protocol version. Bumped on any incompatible change to frames or control messages. */
export const PROTOCOL_VERSION = 1;
