import { describe, expect, it } from 'vitest';
import { CHROMIUM_SEND_QUEUE_BYTES, effectiveHighWaterMark } from './internal.ts';

describe('effectiveHighWaterMark', () => {
  it('keeps a mark well below the send queue limit', () => {
    expect(effectiveHighWaterMark(2 ** 20, 262_144)).toBe(2 ** 20);
  });

  it('caps 16 MiB (which Chromium refuses mid-transfer) below the limit by two messages', () => {
    const hwm = effectiveHighWaterMark(16 * 2 ** 20, 262_144);
    expect(hwm).toBe(CHROMIUM_SEND_QUEUE_BYTES - 2 * 262_144);
    // An awaited send stops at the mark, so the queue holds at most the mark plus one message.
    expect(hwm + 262_144).toBeLessThan(CHROMIUM_SEND_QUEUE_BYTES);
  });

  it('never returns less than one byte', () => {
    expect(effectiveHighWaterMark(0, 262_144)).toBe(1);
  });
});
