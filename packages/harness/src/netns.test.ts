import { describe, expect, it } from 'vitest';
import { ISOLATED_ENV, exitStatus, insideIsolatedNetwork, onParentExit } from './netns.ts';

describe('netns helpers', () => {
  it('reports exit status like a shell', () => {
    expect(exitStatus(0, null)).toBe(0);
    expect(exitStatus(3, null)).toBe(3);
    expect(exitStatus(null, 'SIGINT')).toBe(130);
    expect(exitStatus(null, 'SIGTERM')).toBe(143);
    expect(exitStatus(null, null)).toBe(1);
  });

  it('knows whether it runs inside from the environment marker', () => {
    expect(insideIsolatedNetwork({})).toBe(false);
    expect(insideIsolatedNetwork({ [ISOLATED_ENV]: '' })).toBe(false);
    expect(insideIsolatedNetwork({ [ISOLATED_ENV]: '1234' })).toBe(true);
  });

  it('does not watch a parent outside a re-executed child', () => {
    const saved = process.env[ISOLATED_ENV];
    delete process.env[ISOLATED_ENV];
    try {
      let called = false;
      const stop = onParentExit(() => (called = true), 1);
      stop();
      expect(called).toBe(false);
    } finally {
      if (saved !== undefined) process.env[ISOLATED_ENV] = saved;
    }
  });
});
