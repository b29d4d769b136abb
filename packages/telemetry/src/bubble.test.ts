import { describe, expect, it } from 'vitest';
import { pipelineBubble } from './bubble.ts';
import type { Span } from './spans.ts';

const span = (peerId: string, kind: Span['kind'], startMs: number, durMs: number): Span => ({
  peerId,
  kind,
  startMs,
  durMs,
  step: 0,
  lane: 'compute',
});

describe('pipelineBubble', () => {
  it('is (P-1)/(M+P-1) for an ideal GPipe step (unit forward and backward)', () => {
    const p = 3;
    const m = 4;
    const spans: Span[] = [];
    for (let s = 0; s < p; s++) {
      for (let mb = 0; mb < m; mb++) spans.push(span(`s${s}`, 'forward', s + mb, 1));
      // backwards run from the last stage back, after the last forward of the last stage
      for (let i = 0; i < m; i++) spans.push(span(`s${s}`, 'backward', m + p - 1 + (p - 1 - s) + i, 1));
    }
    spans.push(span('s0', 'optimizer', 100, 5)); // ignored
    expect(pipelineBubble(spans, p)).toBeCloseTo((2 * (p - 1)) / (2 * (m + p - 1)), 10);
  });

  it('is 0 for one stage busy throughout and null without compute spans', () => {
    expect(pipelineBubble([span('a', 'forward', 0, 2), span('a', 'backward', 2, 3)], 1)).toBe(0);
    expect(pipelineBubble([span('a', 'send', 0, 2)], 2)).toBeNull();
  });
});
